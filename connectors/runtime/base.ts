import type { BreakerState, Connector, ConnectorDeps, ConnectorStatus, ConnectorTestResult } from '../connector.ts';
import type { CommonOptions } from './options.ts';
import { ConnectorRuntime } from './runtime.ts';

/**
 * What every connector class shares: the pipeline (`runtime`), status, the health check and the
 * breaker reset. A subclass adds its protocol: `ping()` and the calls its directive makes.
 */
export abstract class BaseConnector<C extends CommonOptions> implements Connector {
  readonly runtime: ConnectorRuntime;

  constructor(
    readonly name: string,
    readonly config: C,
    protected readonly deps: ConnectorDeps,
  ) {
    this.runtime = new ConnectorRuntime(name, config, deps);
  }

  get type(): string {
    return this.config.type;
  }

  get required(): boolean {
    return this.config.required;
  }

  async start(): Promise<void> {}

  /** The health check's probe: resolves when the system answers, rejects with the reason. */
  protected abstract ping(signal: AbortSignal): Promise<void>;

  async check(): Promise<ConnectorTestResult> {
    const started = performance.now();
    let error: string | null = null;
    try {
      await this.ping(AbortSignal.timeout(this.config.timeoutMs));
    } catch (e) {
      error = this.deps.scrub((e as Error).name === 'TimeoutError' ? `no answer within ${this.config.timeoutMs} ms` : (e as Error).message);
    }
    this.runtime.recordCheck(error === null, error);
    return { ok: error === null, latencyMs: Math.round((performance.now() - started) * 100) / 100, error };
  }

  status(): ConnectorStatus {
    const { requests, failures, lastError, cache } = this.runtime.stats();
    const cached = this.config.cache !== undefined || cache.hits + cache.misses > 0;
    return {
      name: this.name,
      type: this.type,
      required: this.required,
      healthy: this.runtime.healthy,
      lastError,
      breaker: { state: this.runtime.breakerState },
      requests,
      failures,
      cache: cached ? cache : null,
      pool: null,
    };
  }

  /** A DataLoader batch of `size` keys made by the field `coordinate`. */
  recordBatch(coordinate: string, size: number): void {
    this.deps.metrics.batch(coordinate, size);
  }

  resetBreaker(): { state: BreakerState } {
    return this.runtime.resetBreaker();
  }

  async close(): Promise<void> {
    this.runtime.close();
  }
}
