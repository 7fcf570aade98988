import type { PubSubEngine } from 'graphql-subscriptions';
import type Keyv from 'keyv';
import type { Logger } from 'pino';
import type { Connector } from '../connectors/connector.ts';

/** The authenticated caller, from a verified token. */
export interface User {
  /** The token's `sub` claim. */
  id: string;
  roles: string[];
  claims: Record<string, unknown>;
}

/** What every resolver, built-in or user-written, receives as its context. */
export interface HubContext {
  user: User | null;
  /** The configured connectors by name: `context.connectors.crm`. */
  connectors: Readonly<Record<string, Connector>>;
  /** In-memory pub/sub for subscriptions (`pubsub: memory`). */
  pubsub: PubSubEngine;
  /** A child of the hub's logger, bound to this request; secrets are redacted. */
  logger: Logger;
  /** The hub's keyv store (`cache.store`), for `@cache` and code resolvers that cache. */
  cache: Keyv;
  /** This request's DataLoaders, by id (connectors/runtime/loaders.ts). */
  loaders: Map<string, unknown>;
  /** Fields served from the cache while their connector's breaker was open: `extensions.stale`. */
  stale: { path: (string | number)[]; connector: string }[];
}
