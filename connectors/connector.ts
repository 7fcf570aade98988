import type { GraphQLFieldResolver, GraphQLInputType, GraphQLOutputType } from 'graphql';
import type Keyv from 'keyv';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { HubContext } from '../src/context.ts';
import type { ConnectorMetrics } from '../src/metrics.ts';
import type { CommonOptions } from './runtime/options.ts';
import type { StatusEvent } from './runtime/runtime.ts';

/** The breaker states SPEC §7 exposes. */
export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

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
}

export interface ConnectorTestResult {
  ok: boolean;
  latencyMs: number;
  error: string | null;
}

/** What the hub hands every connector; a connector reaches for nothing else. */
export interface ConnectorDeps {
  logger: Logger;
  /** The hub's keyv store (memory or Redis), shared by every connector; keys are namespaced. */
  cache: Keyv;
  metrics: ConnectorMetrics;
  /** Breaker transitions and health flips, for the connectorStatus subscription. */
  onStatus(event: StatusEvent): void;
  /**
   * Removes the configuration's secret values from text a connector keeps and shows (`lastError`,
   * health-check errors): an upstream may echo credentials in its error messages. The hub passes it.
   */
  scrub(text: string): string;
  /** The config file's folder: relative paths in a connector's config resolve against it. */
  baseDir: string;
}

/**
 * Every connector type implements this. Lifecycle: the type's `schema` validates the config
 * (at load, with key paths), `start()` connects, `check()` is the health check run by
 * `testConnector`, `close()` settles in-flight work and disconnects.
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
}

/** One use of a binding directive on a field, as `bind()` sees it at schema build time. */
export interface DirectiveUse {
  /** The directive's arguments, defaults applied. */
  args: Record<string, unknown>;
  /** The field's return type. */
  type: GraphQLOutputType;
  /** The field's own arguments. */
  arguments: readonly { name: string; type: GraphQLInputType }[];
  /** `Type.field`. */
  coordinate: string;
  /** From `@cache` on the same field. */
  cache: { ttlMs: number; staleIfOpen: boolean | undefined } | undefined;
}

/**
 * A directive that binds fields to a connector type (`@http`, `@graphql`, …). Its `connector`
 * argument is checked before `bind()` runs: it names a configured connector of that type.
 */
export interface FieldDirective {
  name: string;
  /** The connector type the directive's `connector` argument must name. */
  connectorType: string;
  /** The directive's definition and the input types it needs. */
  sdl: string;
  /** Checks one use and returns the field's resolver, or the problems found (each a sentence). */
  bind(use: DirectiveUse): GraphQLFieldResolver<unknown, HubContext> | string[];
  /**
   * `junction check` only: problems the connector's system itself finds in this use without
   * running it (SQLite prepares the statements), as sentences.
   */
  verify?(use: DirectiveUse, config: CommonOptions, baseDir: string): string[];
}

/** A connector type: its folder under connectors/ exports one of these, and the registry names it. */
export interface ConnectorType<C extends CommonOptions = CommonOptions> {
  /** The type's config schema, common options (connectors/runtime/options.ts) included. */
  schema: z.ZodType<C>;
  create(name: string, config: C, deps: ConnectorDeps): Connector;
  directive?: FieldDirective;
}
