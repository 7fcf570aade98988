import DataLoader from 'dataloader';
import type { BreakerState, Connector, ConnectorDeps, ConnectorStatus, ConnectorTestResult } from './contract.ts';
import type { CommonOptions } from './options.ts';
import { type Call, ConnectorRuntime, type Outcome } from './runtime.ts';

/** How `batch()` groups keys; DataLoader's own options, narrowed to what a connector needs. */
export interface BatchOptions<K> {
  /** Default `String(key)`. Keys with the same text are loaded once per batch. */
  keyOf?: (key: K) => string;
  /** Default 100. Longest batch; more keys in one tick make several batches. */
  maxBatchSize?: number;
}

/**
 * What every connector class shares: the pipeline, status, the health check and the breaker
 * reset. A subclass adds its protocol: `ping()` (the health probe) and its own methods, each of
 * which sends its outbound calls through `call()`, and, when keys can be fetched together,
 * through a loader made by `batch()`.
 */
export abstract class BaseConnector<C extends CommonOptions = CommonOptions> implements Connector {
  /** The pipeline (cache, in-flight dedupe, breaker, rate limit, retry, timeout). */
  readonly #runtime: ConnectorRuntime;

  constructor(
    readonly name: string,
    readonly config: C,
    protected readonly deps: ConnectorDeps,
  ) {
    this.#runtime = new ConnectorRuntime(name, config, deps);
  }

  get type(): string {
    return this.config.type;
  }

  get required(): boolean {
    return this.config.required;
  }

  /** Connects; the hub awaits every connector's start before it serves. */
  async start(): Promise<void> {}

  /**
   * Makes one outbound call through the pipeline: cache (safe calls, `ttlMs` or the connector's
   * `cache.ttlMs`) → in-flight dedupe (safe calls) → circuit breaker → rate limit → retry with
   * backoff (retryable calls, transient errors) → timeout → `attempt`. Resolves with the value,
   * and `stale: true` when it came from the cache because the breaker was open.
   */
  call<T>(call: Call<T>): Promise<Outcome<T>> {
    return this.#runtime.execute(call);
  }

  /**
   * A loader for keys that can be fetched in one call: every `load(key)` made in the same tick
   * (the resolvers of one GraphQL request run in the same tick) reaches `loadMany` as one list,
   * each key once. `loadMany` answers one value (or Error) per key, in order, and makes its call
   * through `call()`. Batches are counted in `junction_dataloader_batch_size{connector, field="<connector>.<name>"}`.
   */
  protected batch<K, V>(
    name: string,
    loadMany: (keys: readonly K[]) => Promise<readonly (V | Error)[]>,
    options: BatchOptions<K> = {},
  ): (key: K) => Promise<V> {
    const keyOf = options.keyOf ?? String;
    const loader = new DataLoader<K, V, string>(
      async (keys) => {
        this.deps.metrics.batch(`${this.name}.${name}`, keys.length);
        return loadMany(keys);
      },
      // No memo across batches: caching is the pipeline's job, with its TTL and its metrics.
      { cache: false, maxBatchSize: options.maxBatchSize ?? 100 },
    );
    // While a key is being loaded, loading it again shares the answer: DataLoader without its
    // cache would pass the same key twice.
    const pending = new Map<string, Promise<V>>();
    return (key) => {
      const id = keyOf(key);
      let answer = pending.get(id);
      if (!answer) {
        answer = loader.load(key);
        pending.set(id, answer);
        const forget = () => pending.delete(id);
        answer.then(forget, forget);
      }
      return answer;
    };
  }

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
    this.#runtime.recordCheck(error === null, error);
    return { ok: error === null, latencyMs: Math.round((performance.now() - started) * 100) / 100, error };
  }

  status(): ConnectorStatus {
    const { requests, failures, lastError, cache } = this.#runtime.stats();
    const cached = this.config.cache !== undefined || cache.hits + cache.misses > 0;
    return {
      name: this.name,
      type: this.type,
      required: this.required,
      healthy: this.#runtime.healthy,
      lastError,
      breaker: { state: this.#runtime.breakerState },
      requests,
      failures,
      cache: cached ? cache : null,
      pool: null,
    };
  }

  /**
   * Marks the connector healthy or not between health checks (a broker connection lost or back):
   * `hub { connectors }`, /readyz for a required connector and the connectorStatus subscription
   * see it at once.
   */
  protected reportHealth(ok: boolean, error: string | null): void {
    this.#runtime.recordCheck(ok, error === null ? null : this.deps.scrub(error));
  }

  /** A DataLoader batch of `size` keys made by the field `coordinate` (directive resolvers). */
  recordBatch(coordinate: string, size: number): void {
    this.deps.metrics.batch(coordinate, size);
  }

  resetBreaker(): { state: BreakerState } {
    return this.#runtime.resetBreaker();
  }

  async close(): Promise<void> {
    this.#runtime.close();
  }
}
