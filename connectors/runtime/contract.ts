// The connector contract: what the hub hands a connector, what a connector type gives back, and
// what every resolver receives. Public API (re-exported by src/index.ts): change it on purpose.
import type { IncomingHttpHeaders } from 'node:http';
import type { GraphQLFieldResolver, GraphQLInputType, GraphQLOutputType } from 'graphql';
import type { PubSubEngine } from 'graphql-subscriptions';
import type Keyv from 'keyv';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { CommonOptions } from './options.ts';

/** The breaker states SPEC §7 exposes. */
export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

/** A breaker transition or a health flip, as the `connectorStatus` subscription reports it. */
export type StatusEvent = 'BREAKER_OPENED' | 'BREAKER_HALF_OPEN' | 'BREAKER_CLOSED' | 'HEALTHY' | 'UNHEALTHY';

/** What `hub.connectors` shows of one connector. */
export interface ConnectorStatus {
  name: string;
  type: string;
  required: boolean;
  healthy: boolean;
  lastError: string | null;
  breaker: { state: BreakerState };
  requests: number;
  failures: number;
  cache: { hits: number; misses: number } | null;
  /** Connection pool, for connectors that have one (sql). */
  pool: { total: number; idle: number; waiting: number } | null;
  /** Inbound webhook counts, for connectors that receive webhooks (`type: webhook`). */
  webhook?: WebhookStats | null;
  /** The broker consumer's state, for queue connectors (`amqp`, `nats`, `mqtt`, `redis`). */
  consumer?: ConsumerStats | null;
}

/** What a queue connector's consumer has done since the hub started. */
export interface ConsumerStats {
  /** Connected to the broker now. */
  connected: boolean;
  /** Messages handed to the connector by the broker (redeliveries included). */
  received: number;
  /** New events stored in the event log. */
  stored: number;
  /** Messages whose delivery id was stored before: acknowledged, stored once. */
  duplicates: number;
  /** Deliveries the broker marked as redelivered (or counted more than once). */
  redelivered: number;
  /** Messages recorded under `<connector>.dead` after `maxDeliveries`. */
  deadLettered: number;
  /** Messages waiting in the broker for this consumer, where the broker reports it; else null. */
  lag: number | null;
  /** When the last new event was stored (ISO 8601); null before the first. */
  lastEventAt: string | null;
}

/** One message a `@publish` mutation hands to a queue connector. */
export interface OutboundMessage {
  /** The destination, as the directive's `to` template made it: a queue, `exchange/routingKey`, subject, topic or stream. */
  to: string;
  /** The payload, JSON text. */
  body: string;
  /**
   * The mutation's idempotency key (hub-scoped: the hub has already refused a repeat); pass it to
   * the broker's own dedupe where it has one (`Nats-Msg-Id`, AMQP `message-id`).
   */
  idempotencyKey?: string | undefined;
}

/** The broker's confirmation of a published message. */
export interface PublishConfirm {
  /** The broker's id for the message (XADD id, JetStream sequence, …) or the id the hub gave it. */
  messageId: string;
}

/** What a webhook connector has received since the hub started. */
export interface WebhookStats {
  /** Requests that reached the connector's route (a body over `maxBodyBytes` never does). */
  received: number;
  /** New events stored. */
  stored: number;
  /** Redeliveries of a stored delivery id: answered 200, stored nothing. */
  duplicates: number;
  /** Requests refused, every reason. */
  rejected: number;
  /** Refused requests by reason (`bad_signature`, `missing_header`, `stale_timestamp`, `malformed`, …). */
  rejectedByReason: { reason: string; count: number }[];
  /** When the last new event was stored (its `receivedAt`, ISO 8601); null before the first. */
  lastEventAt: string | null;
}

export interface ConnectorTestResult {
  ok: boolean;
  latencyMs: number;
  error: string | null;
}

/** What a connector's pipeline records; the labels are bound to the connector's name. */
export interface ConnectorMetrics {
  /**
   * One call through the pipeline. `refused`: the upstream answered with an error that is not its
   * failure (a 4xx, a statement the database refused, a GraphQL `errors` answer); `error`: it failed.
   */
  request(outcome: 'success' | 'refused' | 'error' | 'timeout' | 'circuit_open' | 'rate_limited', seconds: number): void;
  /** The breaker's state; every call after the first is a transition. */
  breakerState(state: BreakerState): void;
  cache(result: 'hit' | 'miss' | 'stale'): void;
  retry(): void;
  rateLimited(): void;
  /** A batch of `size` keys, by the field (or connector method) that made it. */
  batch(field: string, size: number): void;
  /** SQL statements a database ran. */
  statements(count: number): void;
  /** Where the connection pool's numbers are read from at each scrape. */
  pool(read: () => { total: number; idle: number; waiting: number }): void;
  /**
   * Inbound events (webhook and queue connectors), by the event log `source` they are for:
   * received (reached the connector), stored (new), duplicate (a redelivery), dead_lettered
   * (recorded under `<connector>.dead`), rejected (by reason).
   */
  event?(source: string, outcome: 'received' | 'stored' | 'duplicate' | 'dead_lettered'): void;
  eventRejected?(source: string, reason: string): void;
}

/** What the hub hands every connector; a connector reaches for nothing else. */
export interface ConnectorDeps {
  /** The hub's logger, bound to the connector's name; secrets are redacted. */
  logger: Logger;
  /** The hub's keyv store (memory or Redis), shared by every connector; keys are namespaced. */
  cache: Keyv;
  metrics: ConnectorMetrics;
  /** The hub's pub/sub: what a connector publishes here reaches `Subscription` fields. */
  pubsub: PubSubEngine;
  /**
   * The hub's durable event log (`eventLog`): webhook and queue connectors append what they
   * receive, and `events` / `@subscribe` subscriptions stream it. An append resolves once the
   * event is stored, and wakes the subscribers of its source on every hub instance.
   */
  eventLog: EventLog;
  /** Breaker transitions and health flips, for the connectorStatus subscription. */
  onStatus(event: StatusEvent): void;
  /**
   * Removes the configuration's secret values from text a connector keeps and shows (`lastError`,
   * health-check errors): an upstream may echo credentials in its error messages.
   */
  scrub(text: string): string;
  /** The config file's folder: relative paths in a connector's config resolve against it. */
  baseDir: string;
}

/**
 * Every connector implements this (BaseConnector does the common part). Lifecycle: the type's
 * `schema` validates the config at load (key paths, exit 2), `start()` connects, `check()` is
 * the health check `testConnector` runs, `close()` settles in-flight work and disconnects.
 */
export interface Connector {
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  start(): Promise<void>;
  status(): ConnectorStatus;
  check(): Promise<ConnectorTestResult>;
  resetBreaker(): { state: BreakerState };
  close(): Promise<void>;
  /**
   * Inbound HTTP (webhooks): when present, the hub serves `POST /webhooks/<connector name>` with
   * it. The hub reads the body as raw bytes up to `maxBodyBytes` (413 beyond) and never parses it.
   */
  readonly inbound?: InboundRoute | undefined;
  /**
   * Outbound messages (`@publish`): resolves once the broker confirmed the message, through the
   * connector's pipeline; rejects with a connector error otherwise.
   */
  publish?(message: OutboundMessage): Promise<PublishConfirm>;
}

/** A request to a connector's inbound route, as the hub read it. */
export interface InboundRequest {
  method: string;
  /** The path below `/webhooks/<name>` ("" for the route itself) and the query string. */
  url: URL;
  headers: IncomingHttpHeaders;
  /** The body exactly as sent: signatures are computed over these bytes. */
  body: Buffer;
}

/** What the hub answers; a JSON body is serialized with `content-type: application/json`. */
export interface InboundResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface InboundRoute {
  /** Largest body accepted; larger ones are answered 413 without calling `handle`. */
  maxBodyBytes: number;
  /** Must not throw for anything a sender can send; a throw is answered 500 and logged. */
  handle(request: InboundRequest): Promise<InboundResponse>;
}

/** One event as the event log stores it (SPEC §6). */
export interface StoredEvent {
  /** The cursor: ordered within its source (compare with the log's own order, not as text). */
  id: string;
  /** The connector that received it (`github`), or `<connector>.dead` for a dead letter. */
  source: string;
  /** The source's own event type (`push`, `invoice.paid`, a routing key). */
  type: string;
  /** The source's own delivery id; one (source, deliveryId) is stored once. */
  deliveryId: string;
  /** ISO 8601, when the hub received it. */
  receivedAt: string;
  /** The event's JSON payload. */
  payload: unknown;
}

/** What a connector appends. */
export interface NewEvent {
  source: string;
  type: string;
  deliveryId: string;
  payload: unknown;
  /** Default: now. */
  receivedAt?: Date;
}

export interface EventQuery {
  source: string;
  /** Only these types; default: every type. */
  types?: readonly string[] | undefined;
  /** Events after this cursor (exclusive); default: from the oldest retained. */
  after?: string | undefined;
  /** Most events answered. */
  limit: number;
}

/** What one source holds, for the management API. */
export interface EventSourceStats {
  source: string;
  /** The newest event's id, or null for a source with none. */
  latest: string | null;
  /** Events retained. */
  count: number;
}

/**
 * The durable, ordered, deduplicated log every inbound event goes through (SPEC §6). Stores:
 * SQLite (default), PostgreSQL, Redis Streams; see src/events/.
 */
export interface EventLog {
  /**
   * Stores an event and resolves once it is durable, with its id; a (source, deliveryId) stored
   * before resolves with the stored event and `duplicate: true`, storing nothing. Ids are
   * assigned so that a reader that has seen id N never later finds a new event at or below N.
   */
  append(event: NewEvent): Promise<{ event: StoredEvent; duplicate: boolean }>;
  /**
   * Events of one source after a cursor, oldest first. Rejects with a CURSOR_EXPIRED error when
   * events after `after` were removed by retention, never skipping silently; a cursor that is
   * malformed is BAD_USER_INPUT.
   */
  read(query: EventQuery): Promise<StoredEvent[]>;
  /** Every source with events. */
  sources(): Promise<EventSourceStats[]>;
  /**
   * Calls `listener` after an event of `source` is appended, here or on another instance sharing
   * the store (a wake-up only: read the log for the events). Returns the unsubscribe function.
   */
  watch(source: string, listener: () => void): () => void;
  /** `@publish` idempotency keys, kept in the same store: they hold across restarts and instances. */
  readonly keys: IdempotencyKeys;
  close(): Promise<void>;
}

/** What a claim on an idempotency key found. */
export type KeyClaim =
  /** The key is this caller's until `leaseMs` passes: act, then `settle` or `release` with `token`. */
  | { state: 'claimed'; token: string }
  /** Another claim holds the key and has not settled: wait and claim again. */
  | { state: 'pending' }
  /** The key was settled: `value` is what the first caller recorded. */
  | { state: 'settled'; value: string };

/**
 * Idempotency keys: the first caller to claim a key acts, then records what it did; a later
 * claim gets that record until `ttlMs` passes. A claim that is neither settled nor released
 * (its process died) lapses after `leaseMs`, so the key can be claimed again.
 */
export interface IdempotencyKeys {
  claim(key: string, leaseMs: number): Promise<KeyClaim>;
  /** Records the outcome of a claim; a no-op when the claim lapsed and was taken by another. */
  settle(key: string, token: string, value: string, ttlMs: number): Promise<void>;
  /** Gives the key up (the action failed): the next claim acts again. */
  release(key: string, token: string): Promise<void>;
}

/** The authenticated caller, from a verified token or an API key (`auth.apiKeys`). */
export interface User {
  /** The token's `sub` claim, or the API key's `sub`. */
  id: string;
  /** The same as `id`, under the name templates use: `{context.user.sub}`. */
  sub: string;
  roles: string[];
  /** The token's claims; for an API key `{ sub, apiKey: true }` (never the key itself). */
  claims: Record<string, unknown>;
}

/**
 * The configured connectors by name, with their own classes. Empty here: `npm run codegen`
 * writes a declaration that adds one property per configured connector
 * (`declare module 'junction' { interface Connectors { crm: ConnectorOf<typeof crm> } }`).
 */
export interface Connectors {}

/** What every resolver, built-in or user-written, receives as its context. */
export interface HubContext {
  user: User | null;
  /** The configured connectors by name: `context.connectors.crm`. */
  connectors: Readonly<Connectors> & Readonly<Record<string, Connector>>;
  /** The hub's pub/sub (`pubsub`: memory, Redis or PostgreSQL), for subscriptions. */
  pubsub: PubSubEngine;
  /** The hub's durable event log (`eventLog`): what `events` and `@subscribe` read. */
  eventLog: EventLog;
  /** A child of the hub's logger, bound to this request; secrets are redacted. */
  logger: Logger;
  /** The hub's keyv store (`cache.store`), for `@cache` and code resolvers that cache. */
  cache: Keyv;
  /** This request's DataLoaders, by id (see `requestLoader`). */
  loaders: Map<string, unknown>;
  /** Fields served from the cache while their connector's breaker was open: `extensions.stale`. */
  stale: { path: (string | number)[]; connector: string }[];
}

/**
 * One use of a binding directive on a field, as `bind()` sees it at schema build time; or, with
 * `entity`, on a federation entity type (`type User @key(fields: "id") @http(…)`).
 */
export interface DirectiveUse {
  /** The directive's arguments, defaults applied. */
  args: Record<string, unknown>;
  /** The field's return type; for an entity, the entity's object type. */
  type: GraphQLOutputType;
  /** The field's own arguments; none for an entity. */
  arguments: readonly { name: string; type: GraphQLInputType }[];
  /** `Type.field`; for an entity, `Type`. */
  coordinate: string;
  /**
   * True when the directive resolves the entities of a `@key` type (`server.federation`): the
   * binding's `resolve(representation, {}, ctx, info)` is the type's reference resolver, so
   * `{parent.x}` reads the representation (its key fields, and those of `@requires`).
   */
  entity?: boolean;
  /** The operation type when the field is a root field (`Query.x`, `Mutation.x`, `Subscription.x`). */
  operation: 'query' | 'mutation' | 'subscription' | undefined;
  /** From `@cache` on the same field. */
  cache: { ttlMs: number; staleIfOpen: boolean | undefined } | undefined;
}

export type FieldResolver = GraphQLFieldResolver<unknown, HubContext>;

/**
 * What a binding directive makes of one field: a resolver (a query field, or a mutation that
 * acts, e.g. publishes), and for a `Subscription` field the source of its events (`subscribe`),
 * whose values `resolve` maps (default: the event itself).
 */
export interface FieldBinding {
  resolve?: FieldResolver;
  subscribe?: FieldResolver;
}

/**
 * A directive that binds fields to a connector type (`@http`, `@sql`, …). Its `connector`
 * argument is checked before `bind()` runs: it names a configured connector of this type.
 */
export interface FieldDirective {
  /** Without the `@`. */
  name: string;
  /** The directive's definition and the input types it needs. */
  sdl: string;
  /** Checks one use; returns what the field becomes, or the problems found (each a sentence). */
  bind(use: DirectiveUse): FieldBinding | string[];
  /**
   * `junction check` only: problems the connector's system itself finds in this use without
   * running it (SQLite prepares the statements), as sentences.
   */
  verify?(use: DirectiveUse, config: CommonOptions, baseDir: string): string[];
}

/**
 * A connector type: what `defineConnectorType` returns and a module named in `connectorTypes`
 * default-exports. `K` is the connector class, so `context.connectors.<name>` has its methods.
 */
export interface ConnectorType<C extends CommonOptions = CommonOptions, K extends Connector = Connector> {
  /** The `type` a config entry names: letters, digits, `-` and `_`. */
  readonly type: string;
  /** The config schema, common options included (`connectorConfig`); defaults applied by it. */
  readonly schema: z.ZodType<C, any>;
  create(name: string, config: C, deps: ConnectorDeps): K;
  /** Binding directives this type contributes; each names the type's connectors. */
  readonly directives: readonly FieldDirective[];
}

/** The connector class a connector type creates: `ConnectorOf<typeof crm>`. */
export type ConnectorOf<T> = T extends ConnectorType<any, infer K> ? K : never;
