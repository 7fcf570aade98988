import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { withFilter } from 'graphql-subscriptions';
import type { Connector, ConnectorStatus, HubContext, StatusEvent, StoredEvent } from '../connectors/runtime/contract.ts';
import { ErrorCode, HubError } from './errors.ts';
import { EventStream, noteCursor } from './events/subscriptions.ts';
import { version } from './version.ts';

/** Resolvers of the built-in management API (src/hub.graphql, SPEC §7). */
export const hubResolvers = {
  JSON: new GraphQLScalarType({
    name: 'JSON',
    description: 'Any JSON value.',
    serialize: (value) => value,
    parseValue: (value) => value,
    parseLiteral: (node, variables) => jsonLiteral(node, variables),
  }),
  Query: {
    hub: () => ({ version }),
    events: async (_: unknown, args: EventsArgs & { first: number }, ctx: HubContext) => {
      const first = args.first;
      if (!Number.isInteger(first) || first < 1 || first > MAX_EVENTS_PAGE) {
        throw new HubError(ErrorCode.BAD_USER_INPUT, `first must be between 1 and ${MAX_EVENTS_PAGE}, got ${first}`, { argument: 'first' });
      }
      // One more than asked: whether there is a next page, without a second read.
      const read = await ctx.eventLog.read({ source: args.source, types: args.types ?? undefined, after: args.after ?? undefined, limit: first + 1 });
      const page = read.slice(0, first);
      return {
        edges: page.map((node) => ({ cursor: node.id, node })),
        pageInfo: { endCursor: page.at(-1)?.id ?? args.after ?? null, hasNextPage: read.length > first },
      };
    },
  },
  Hub: {
    connectors: (_: unknown, __: unknown, ctx: HubContext) =>
      Object.values(ctx.connectors as Record<string, Connector>).map((c) => c.status()),
    connector: (_: unknown, args: { name: string }, ctx: HubContext) =>
      ctx.connectors[args.name]?.status() ?? null,
    eventSources: (_: unknown, __: unknown, ctx: HubContext) => ctx.eventLog.sources(),
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
    events: {
      subscribe: (_: unknown, args: EventsArgs, ctx: HubContext) =>
        new EventStream(ctx.eventLog, { source: args.source, types: args.types, after: args.after }),
      resolve: (event: StoredEvent, _: unknown, ctx: HubContext) => {
        noteCursor(ctx, event);
        return event;
      },
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

/**
 * Fields that require the `admin` role whenever incoming `auth` is configured. `events` reads
 * every source's payloads, so it is one of them; a `@subscribe` field is the way to give other
 * callers one source's events (guarded by `@auth` as the schema's author decides).
 */
export const managementFields = [
  'Query.hub',
  'Query.events',
  'Mutation.testConnector',
  'Mutation.resetBreaker',
  'Subscription.connectorStatus',
  'Subscription.events',
];

/** The most events one `Query.events` page answers. */
export const MAX_EVENTS_PAGE = 1000;

interface EventsArgs {
  source: string;
  types?: string[] | null;
  after?: string | null;
}

/** A JSON value written inline in a document (`payload: {a: [1, "x"]}`), variables resolved. */
function jsonLiteral(node: ValueNode, variables: Record<string, unknown> | null | undefined): unknown {
  switch (node.kind) {
    case Kind.NULL:
      return null;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.STRING:
    case Kind.ENUM:
      return node.value;
    case Kind.BOOLEAN:
      return node.value;
    case Kind.LIST:
      return node.values.map((v) => jsonLiteral(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((f) => [f.name.value, jsonLiteral(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[node.name.value];
    default:
      return undefined;
  }
}

/** The pub/sub trigger connector status changes are published on. */
export const CONNECTOR_STATUS = 'junction.connectorStatus';

export interface ConnectorStatusPayload {
  connectorStatus: { event: StatusEvent; at: string; connector: ConnectorStatus };
}
