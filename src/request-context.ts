import { randomUUID } from 'node:crypto';
import type Keyv from 'keyv';
import type { Logger } from 'pino';
import type { Connector, EventLog, HubContext, User } from '../connectors/runtime/contract.ts';

/** What every request's context shares: the hub's own parts. */
export interface ContextParts {
  connectors: Record<string, Connector>;
  pubsub: HubContext['pubsub'];
  eventLog: EventLog;
  cache: Keyv;
  logger: Logger;
}

const PARTS = Symbol('junction.contextParts');
const REQUEST_ID = Symbol('junction.requestId');
const LOGGER = Symbol('junction.logger');

/**
 * The context of one operation (HTTP request or WebSocket subscription). `logger` is made on
 * first use, by a getter on the prototype: Apollo Server copies each HTTP request's context
 * (`Object.assign` onto an object of the same prototype), which copies own properties only, so
 * the copy stays lazy too, and most requests never pay for a logger child and a request id.
 */
class RequestContext implements HubContext {
  readonly user: User | null;
  readonly connectors: HubContext['connectors'];
  readonly pubsub: HubContext['pubsub'];
  readonly eventLog: EventLog;
  readonly cache: Keyv;
  readonly loaders = new Map<string, unknown>();
  readonly stale: HubContext['stale'] = [];
  // Symbol-keyed own properties: copied with the context, out of the way of resolvers.
  readonly [PARTS]: ContextParts;
  readonly [REQUEST_ID]: string | undefined;
  [LOGGER]: Logger | undefined;

  constructor(parts: ContextParts, user: User | null, requestId: string | undefined) {
    this.user = user;
    this.connectors = parts.connectors as HubContext['connectors'];
    this.pubsub = parts.pubsub;
    this.eventLog = parts.eventLog;
    this.cache = parts.cache;
    this[PARTS] = parts;
    this[REQUEST_ID] = requestId;
    this[LOGGER] = undefined;
  }

  /** A child of the hub's logger bound to the request's `x-request-id`, else a new UUID. */
  get logger(): Logger {
    return (this[LOGGER] ??= this[PARTS].logger.child({ requestId: this[REQUEST_ID] ?? randomUUID() }));
  }
}

/** A new operation's context; `requestId` is the client's `x-request-id` when it sent one. */
export function requestContext(parts: ContextParts, user: User | null, requestId?: string | string[]): HubContext {
  return new RequestContext(parts, user, typeof requestId === 'string' ? requestId : undefined);
}
