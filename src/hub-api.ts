import { withFilter } from 'graphql-subscriptions';
import type { Connector, ConnectorStatus, HubContext, StatusEvent } from '../connectors/runtime/contract.ts';
import { ErrorCode, HubError } from './errors.ts';
import { version } from './version.ts';

/** Resolvers of the built-in management API (src/hub.graphql, SPEC §7). */
export const hubResolvers = {
  Query: {
    hub: () => ({ version }),
  },
  Hub: {
    connectors: (_: unknown, __: unknown, ctx: HubContext) =>
      Object.values(ctx.connectors as Record<string, Connector>).map((c) => c.status()),
    connector: (_: unknown, args: { name: string }, ctx: HubContext) =>
      ctx.connectors[args.name]?.status() ?? null,
  },
  Subscription: {
    connectorStatus: {
      subscribe: withFilter(
        (_: unknown, __: unknown, ctx: HubContext | undefined) => ctx!.pubsub.asyncIterableIterator(CONNECTOR_STATUS),
        (payload: unknown, args: unknown) => {
          const name = (args as { name?: string | null }).name;
          return !name || (payload as ConnectorStatusPayload).connectorStatus.connector.name === name;
        },
      ),
    },
  },
  Mutation: {
    testConnector: async (_: unknown, args: { name: string }, ctx: HubContext) => ({
      name: args.name,
      ...(await connectorNamed(ctx, args.name).check()),
    }),
    resetBreaker: (_: unknown, args: { name: string }, ctx: HubContext) =>
      connectorNamed(ctx, args.name).resetBreaker(),
  },
};

function connectorNamed(ctx: HubContext, name: string): Connector {
  const connector = Object.hasOwn(ctx.connectors, name) ? ctx.connectors[name] : undefined;
  if (!connector) {
    const known = Object.keys(ctx.connectors);
    throw new HubError(
      ErrorCode.BAD_USER_INPUT,
      `No connector named "${name}" (configured: ${known.length ? known.join(', ') : 'none'})`,
      { argument: 'name' },
    );
  }
  return connector;
}

/** Fields that require the `admin` role whenever incoming `auth` is configured. */
export const managementFields = ['Query.hub', 'Mutation.testConnector', 'Mutation.resetBreaker', 'Subscription.connectorStatus'];

/** The pub/sub trigger connector status changes are published on. */
export const CONNECTOR_STATUS = 'junction.connectorStatus';

export interface ConnectorStatusPayload {
  connectorStatus: { event: StatusEvent; at: string; connector: ConnectorStatus };
}
