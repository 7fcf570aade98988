// `@subscribe(source, types, select)`: a Subscription field fed by the event log (SPEC §4, §6).
import type { GraphQLInputType } from 'graphql';
import type { FieldBinding, HubContext, StoredEvent } from '../../connectors/runtime/contract.ts';
import { atPath, EventStream, noteCursor } from './subscriptions.ts';

export interface SubscribeUse {
  args: { source?: unknown; types?: unknown; select?: unknown };
  /** The field's own arguments. */
  arguments: readonly { name: string; type: GraphQLInputType }[];
  /** `Subscription.push`. */
  coordinate: string;
  operation: 'query' | 'mutation' | 'subscription' | undefined;
  /** The configured connectors: name → type. */
  connectors: Readonly<Record<string, string>>;
}

/** The suffix of a connector's dead-letter source. */
const DEAD = '.dead';
const DOT_PATH = /^[^.\s]+(\.[^.\s]+)*$/;

/**
 * Checks one use of `@subscribe` and builds the field: `subscribe` streams the source's events
 * from the field's `after` argument (replay, then live), `resolve` gives each event's payload, or
 * the part at `select`, as the field's value. Problems are sentences, without the coordinate.
 */
export function bindSubscribe(use: SubscribeUse): FieldBinding | string[] {
  const problems: string[] = [];
  const { source, types, select } = use.args;
  if (use.operation !== 'subscription') problems.push('@subscribe binds Subscription fields only');
  const connector = typeof source === 'string' && source.endsWith(DEAD) ? source.slice(0, -DEAD.length) : source;
  if (typeof connector !== 'string' || !Object.hasOwn(use.connectors, connector)) {
    const known = Object.keys(use.connectors);
    problems.push(
      `source "${String(source)}" is not a configured connector or its dead letters ("<connector>.dead"); configured: ${known.join(', ') || 'none'}`,
    );
  }
  if (Array.isArray(types) && (types.length === 0 || types.some((t) => typeof t !== 'string' || t === ''))) {
    problems.push('types must list event types (omit it for every type)');
  }
  if (select != null && (typeof select !== 'string' || !DOT_PATH.test(select))) {
    problems.push(`select "${String(select)}" is not a dot path into the payload ("commits", "pull_request.head")`);
  }
  const after = use.arguments.find((a) => a.name === 'after');
  if (!after) problems.push('the field must declare the argument `after: ID` (the cursor to replay from)');
  else if (String(after.type) !== 'ID') {
    problems.push(`the argument after must be of type ID (nullable: without it the field is live only), not ${String(after.type)}`);
  }
  const others = use.arguments.filter((a) => a.name !== 'after').map((a) => a.name);
  if (others.length > 0) problems.push(`arguments other than after are not used by @subscribe: ${others.join(', ')}`);
  if (problems.length > 0) return problems;

  const filter = (types as string[] | null | undefined) ?? undefined;
  const path = (select as string | null | undefined) ?? undefined;
  return {
    subscribe: (_parent, args, ctx: HubContext) =>
      new EventStream(ctx.eventLog, { source: source as string, types: filter, after: (args as { after?: string | null }).after }),
    resolve: (event, _args, ctx: HubContext) => {
      noteCursor(ctx, event as StoredEvent);
      return atPath((event as StoredEvent).payload, path) ?? null;
    },
  };
}
