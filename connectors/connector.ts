import type { Logger } from 'pino';

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
}

export interface ConnectorTestResult {
  ok: boolean;
  latencyMs: number;
  error: string | null;
}

/** What the hub hands every connector; a connector reaches for nothing else. */
export interface ConnectorDeps {
  logger: Logger;
}

/**
 * Every connector type implements this. Lifecycle: the factory validates the connector's own
 * config (throwing with key paths), `start()` connects, `check()` is the health check run by
 * `testConnector` and `/readyz`, `close()` settles in-flight work and disconnects.
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

export interface ConnectorFactory {
  create(name: string, config: { type: string; required: boolean }, deps: ConnectorDeps): Connector;
}
