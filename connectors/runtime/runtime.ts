import type Keyv from 'keyv';
import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import { shared } from './shared-value.ts';
import type { BreakerState, ConnectorMetrics, StatusEvent } from './contract.ts';
import { CircuitOpenError, ConnectorError, RateLimitedError, UpstreamTimeoutError } from './errors.ts';
import type { CommonOptions } from './options.ts';
import { TokenBucket } from './rate-limit.ts';
import { retryDelay, sleep } from './retry.ts';

/** One logical outbound call, as a connector describes it to the pipeline. */
export interface Call<T> {
  /** Identifies the call for the cache and the in-flight dedupe: method, URL, varying headers, caller. */
  key: string;
  /** A read with no side effect: may be cached and shared with identical calls in flight. */
  safe: boolean;
  /** May be attempted again after a transient failure (idempotent, or carries an Idempotency-Key). */
  retryable: boolean;
  /** Cache TTL for this call (a field's `@cache`); else the connector's `cache.ttlMs`; safe calls only. */
  ttlMs?: number | undefined;
  /** Serve the last cached value while the breaker is open; else the connector's `breaker.staleIfOpen`. */
  staleIfOpen?: boolean | undefined;
  /** One attempt: outbound auth and the call itself, abandoned when `signal` aborts. */
  attempt(signal: AbortSignal): Promise<T>;
}

export interface Outcome<T> {
  value: T;
  /** Served from the cache because the breaker was open. */
  stale: boolean;
}

export interface RuntimeDeps {
  logger: Logger;
  cache: Keyv;
  metrics: ConnectorMetrics;
  /** Told of every breaker transition and health flip (feeds the connectorStatus subscription). */
  onStatus(event: StatusEvent): void;
  /** Removes the configuration's secrets from text kept for `lastError` (an upstream may echo credentials). */
  scrub(text: string): string;
}

interface CacheEntry {
  v: unknown;
  /** When the value stops being fresh (epoch ms). Kept longer only to be served stale. */
  exp: number;
}

/** How long a cached value is kept past its TTL to be served while the breaker is open. */
const STALE_KEEP_MS = 60 * 60 * 1000;

/**
 * The pipeline every outbound call of one connector goes through, outermost first:
 * cache → in-flight dedupe → circuit breaker → rate limiter → retry with backoff → timeout →
 * the attempt (outbound auth and the call, supplied by the connector). Per-request batching
 * (DataLoader) sits in front of it, in the resolvers.
 */
export class ConnectorRuntime {
  readonly #name: string;
  readonly #options: CommonOptions;
  readonly #deps: RuntimeDeps;
  readonly #breaker: CircuitBreaker<[Call<unknown>], unknown> | undefined;
  readonly #limiter: TokenBucket | undefined;
  readonly #inFlight = new Map<string, Promise<Outcome<unknown>>>();
  #requests = 0;
  #failures = 0;
  #hits = 0;
  #misses = 0;
  #lastError: string | null = null;
  #lastCheckOk = true;

  constructor(name: string, options: CommonOptions, deps: RuntimeDeps) {
    this.#name = name;
    this.#options = options;
    this.#deps = deps;
    const { rateLimit, breaker } = options;
    if (rateLimit) this.#limiter = new TokenBucket(rateLimit.rps, rateLimit.burst, rateLimit.maxWaitMs);
    if (breaker.enabled) {
      this.#breaker = new CircuitBreaker((call: Call<unknown>) => this.#limited(call), {
        timeout: false, // each attempt has its own deadline, inside the retries
        errorThresholdPercentage: breaker.errorThresholdPercentage,
        volumeThreshold: breaker.volumeThreshold,
        resetTimeout: breaker.resetTimeoutMs,
        rollingCountTimeout: breaker.windowMs,
        // True means "not the upstream's fault": a 404, a 400, our own rate limit.
        errorFilter: (error: unknown) => error instanceof ConnectorError && !error.countsAsFailure,
      });
      this.#breaker.on('open', () => this.#transition('OPEN', 'BREAKER_OPENED'));
      this.#breaker.on('halfOpen', () => this.#transition('HALF_OPEN', 'BREAKER_HALF_OPEN'));
      this.#breaker.on('close', () => this.#transition('CLOSED', 'BREAKER_CLOSED'));
    }
    deps.metrics.breakerState('CLOSED');
  }

  get breakerState(): BreakerState {
    if (!this.#breaker) return 'CLOSED';
    return this.#breaker.opened ? 'OPEN' : this.#breaker.halfOpen ? 'HALF_OPEN' : 'CLOSED';
  }

  get healthy(): boolean {
    return this.breakerState !== 'OPEN' && this.#lastCheckOk;
  }

  stats() {
    return {
      requests: this.#requests,
      failures: this.#failures,
      lastError: this.#lastError,
      cache: { hits: this.#hits, misses: this.#misses },
    };
  }

  resetBreaker(): { state: BreakerState } {
    this.#breaker?.close();
    return { state: this.breakerState };
  }

  /** Records a health check's result (its error already scrubbed); a flip is a status event. */
  recordCheck(ok: boolean, error: string | null): void {
    const wasHealthy = this.healthy;
    this.#lastCheckOk = ok;
    if (error) this.#lastError = error;
    if (wasHealthy !== this.healthy) this.#deps.onStatus(this.healthy ? 'HEALTHY' : 'UNHEALTHY');
  }

  async execute<T>(call: Call<T>): Promise<Outcome<T>> {
    const ttl = call.safe ? (call.ttlMs ?? this.#options.cache?.ttlMs) : undefined;
    const cacheKey = `${this.#name}:${call.key}`;
    if (ttl) {
      const entry = (await this.#deps.cache.get(cacheKey)) as CacheEntry | undefined;
      const fresh = entry !== undefined && entry.exp > Date.now();
      this.#deps.metrics.cache(fresh ? 'hit' : 'miss');
      if (fresh) {
        this.#hits++;
        return { value: entry.v as T, stale: false };
      }
      this.#misses++;
    }
    if (call.safe) {
      const shared = this.#inFlight.get(call.key);
      if (shared) return shared as Promise<Outcome<T>>;
    }
    const staleIfOpen = call.staleIfOpen ?? this.#options.breaker.staleIfOpen;
    const outcome = (async (): Promise<Outcome<T>> => {
      try {
        const value = await this.#guarded(call);
        if (ttl) {
          // Frozen and kept as it is by the memory store: every hit shares it, nobody changes it.
          const entry: CacheEntry = shared({ v: deepFreeze(value), exp: Date.now() + ttl });
          await this.#deps.cache.set(cacheKey, entry, staleIfOpen ? ttl + STALE_KEEP_MS : ttl);
        }
        return { value, stale: false };
      } catch (error) {
        if (error instanceof CircuitOpenError && staleIfOpen && ttl) {
          const entry = (await this.#deps.cache.get(cacheKey)) as CacheEntry | undefined;
          if (entry) {
            this.#deps.metrics.cache('stale');
            return { value: entry.v as T, stale: true };
          }
        }
        throw error;
      }
    })();
    if (call.safe) {
      this.#inFlight.set(call.key, outcome);
      const forget = () => this.#inFlight.delete(call.key);
      outcome.then(forget, forget);
    }
    return outcome;
  }

  async #guarded<T>(call: Call<T>): Promise<T> {
    this.#requests++;
    const started = performance.now();
    try {
      const value = this.#breaker ? ((await this.#breaker.fire(call as Call<unknown>)) as T) : await this.#limited(call);
      this.#deps.metrics.request('success', (performance.now() - started) / 1000);
      return value;
    } catch (raw) {
      const error = (raw as { code?: string }).code === 'EOPENBREAKER' ? new CircuitOpenError(this.#name) : raw;
      const seconds = (performance.now() - started) / 1000;
      if (answered(error)) {
        // The upstream answered, and refused (a 404, a statement the database refused, a remote
        // GraphQL `errors` answer): whether that is a failure is the caller's to judge. Like the
        // breaker, the connector's status does not count it.
        this.#deps.metrics.request('refused', seconds);
        throw error;
      }
      this.#failures++;
      // The breaker's or the rate limit's refusal made no call: the last error stays the upstream's.
      if (!(error instanceof CircuitOpenError || error instanceof RateLimitedError)) this.#lastError = this.#deps.scrub((error as Error).message);
      this.#deps.metrics.request(outcomeOf(error), seconds);
      throw error;
    }
  }

  async #limited<T>(call: Call<T>): Promise<T> {
    const waitMs = await this.#limiter?.take();
    if (waitMs !== undefined) {
      this.#deps.metrics.rateLimited();
      throw new RateLimitedError(this.#name, waitMs);
    }
    for (let retry = 0; ; retry++) {
      try {
        return await this.#attempt(call);
      } catch (error) {
        const delay = call.retryable ? retryDelay(error, retry, this.#options.retry) : undefined;
        if (delay === undefined) throw error;
        this.#deps.metrics.retry();
        this.#deps.logger.debug({ retry: retry + 1, delayMs: Math.round(delay), err: error }, 'retrying');
        await sleep(delay);
      }
    }
  }

  async #attempt<T>(call: Call<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.#options.timeoutMs);
    try {
      // Raced against the deadline, so an attempt that cannot be aborted (a database driver
      // waiting on its server) still ends on time; its late result is dropped.
      return await Promise.race([call.attempt(signal), rejectOnAbort(signal)]);
    } catch (error) {
      if (signal.aborted && !(error instanceof ConnectorError)) throw new UpstreamTimeoutError(this.#name, this.#options.timeoutMs);
      throw error;
    }
  }

  #transition(state: BreakerState, event: StatusEvent): void {
    this.#deps.metrics.breakerState(state);
    this.#deps.logger.warn({ breaker: state }, `circuit breaker ${state.toLowerCase().replace('_', '-')}`);
    this.#deps.onStatus(event);
  }

  close(): void {
    this.#breaker?.shutdown();
  }
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || ArrayBuffer.isView(value)) return value;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return value;
}

/**
 * An error the upstream answered with that is not its failure (`countsAsFailure` false): not the
 * breaker's or the rate limit's refusal, which made no call at all.
 */
function answered(error: unknown): boolean {
  return error instanceof ConnectorError && !error.countsAsFailure && !(error instanceof CircuitOpenError || error instanceof RateLimitedError);
}

function outcomeOf(error: unknown): 'error' | 'timeout' | 'circuit_open' | 'rate_limited' {
  if (error instanceof UpstreamTimeoutError) return 'timeout';
  if (error instanceof CircuitOpenError) return 'circuit_open';
  if (error instanceof RateLimitedError) return 'rate_limited';
  return 'error';
}
