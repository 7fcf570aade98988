import type { Connector } from '../connectors/connector.ts';
import type { HubContext } from './context.ts';
import { ErrorCode, HubError } from './errors.ts';
import { version } from './version.ts';

/** Resolvers of the built-in management API (src/hub.graphql, SPEC §7). */
export const hubResolvers = {
  Query: {
    hub: () => ({ version }),
  },
  Hub: {
    connectors: (_: unknown, __: unknown, ctx: HubContext) =>
      Object.values(ctx.connectors).map((c) => c.status()),
    connector: (_: unknown, args: { name: string }, ctx: HubContext) =>
      ctx.connectors[args.name]?.status() ?? null,
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
export const managementFields = ['Query.hub', 'Mutation.testConnector', 'Mutation.resetBreaker'];
