/**
 * `server.rateLimit`: one token bucket per caller (its subject, or its IP address when anonymous
 * or when `by: ip`), in this process's memory or in Redis, where every hub instance shares it.
 */
import type { Logger } from 'pino';
import type { User } from '../connectors/runtime/contract.ts';
import type { HubConfig } from './config.ts';

export type ClientRateLimitConfig = NonNullable<HubConfig['server']['rateLimit']>;

export interface Decision {
  allowed: boolean;
  /** When refused: how long until one token is back. */
  retryAfterMs: number;
}

/** Where the buckets live: `take` removes one token from a bucket, atomically. */
interface BucketStore {
  /** Connects, if the store has something to connect to; never throws. */
  start(): Promise<void>;
  take(key: string): Promise<Decision>;
  close(): Promise<void>;
}

export class ClientRateLimiter {
  readonly rps: number;
  readonly burst: number;
  readonly #by: 'subject' | 'ip';
  readonly #store: BucketStore;
  readonly #logger: Logger;

  constructor(config: ClientRateLimitConfig, logger: Logger) {
    this.rps = config.rps;
    this.burst = config.burst ?? Math.max(1, Math.ceil(config.rps));
    this.#by = config.by;
    this.#logger = logger;
    this.#store = config.store === 'memory' ? new MemoryBuckets(this.rps, this.burst) : new RedisBuckets(config.store, this.rps, this.burst, logger);
  }

  /** The bucket a caller draws from. */
  keyOf(user: User | null, ip: string | undefined): string {
    return this.#by === 'subject' && user ? `sub:${user.sub}` : `ip:${ip ?? 'unknown'}`;
  }

  /** Connects to the store (Redis) before the hub serves; an unreachable store is logged, not fatal. */
  start(): Promise<void> {
    return this.#store.start();
  }

  /** Takes a token for this caller. A store that fails lets the request through (logged). */
  async take(user: User | null, ip: string | undefined): Promise<Decision> {
    try {
      return await this.#store.take(this.keyOf(user, ip));
    } catch (error) {
      // The store reports an outage once itself; each request let through is only debug.
      this.#logger.debug({ err: error }, 'rate-limit store failed; request allowed');
      return { allowed: true, retryAfterMs: 0 };
    }
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}

/** Buckets in a Map; full buckets of callers gone quiet are swept so the map cannot grow without end. */
class MemoryBuckets implements BucketStore {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #perMs: number;
  readonly #burst: number;
  #takes = 0;

  constructor(rps: number, burst: number) {
    this.#perMs = rps / 1000;
    this.#burst = burst;
  }

  async start(): Promise<void> {}

  async take(key: string): Promise<Decision> {
    const now = performance.now();
    if (++this.#takes % 1000 === 0) this.#sweep(now);
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#perMs);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, retryAfterMs: 0 };
    }
    return { allowed: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / this.#perMs) };
  }

  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#perMs >= this.#burst) this.#buckets.delete(key);
    }
  }

  async close(): Promise<void> {
    this.#buckets.clear();
  }
}

/**
 * The same bucket as one Lua script, so concurrent hubs never both take the last token. Time is
 * Redis's own (TIME), so the instances' clocks do not matter; an idle bucket expires once full.
 */
const TAKE_SCRIPT = `
local per_ms = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * per_ms)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_ms) + 1000)
return { allowed, retry }
`;

const KEY_PREFIX = 'junction:ratelimit:';

/** node-redis (`@redis/client`, already the client of the Redis cache store), loaded only when used. */
class RedisBuckets implements BucketStore {
  readonly #url: string;
  readonly #args: string[];
  readonly #logger: Logger;
  #client: import('@redis/client').RedisClientType | undefined;
  #sha: string | undefined;

  constructor(url: string, rps: number, burst: number, logger: Logger) {
    this.#url = url;
    this.#args = [String(rps / 1000), String(burst)];
    this.#logger = logger;
  }

  async start(): Promise<void> {
    const { createClient } = await import('@redis/client');
    // No offline queue: while Redis is unreachable, a take fails at once (and is let through);
    // the client reconnects in the background.
    const client = createClient({ url: this.#url, disableOfflineQueue: true, socket: { connectTimeout: CONNECT_TIMEOUT_MS } }) as import('@redis/client').RedisClientType;
    let reported = false;
    let failed = () => {};
    const firstFailure = new Promise<void>((resolve) => (failed = resolve));
    client.on('error', (error: unknown) => {
      // Once per outage, not once per reconnection attempt.
      if (!reported) this.#logger.warn({ err: error }, 'rate-limit store (redis) unreachable; requests are let through until it is back');
      reported = true;
      failed();
    });
    client.on('ready', () => (reported = false));
    this.#client = client;
    // Serving starts once connected, or at the first failure (the client keeps reconnecting).
    const connected = client.connect().then(() => undefined, () => undefined);
    const timer = new Promise<void>((resolve) => setTimeout(resolve, CONNECT_TIMEOUT_MS).unref());
    await Promise.race([connected, firstFailure, timer]);
  }

  async take(key: string): Promise<Decision> {
    const client = this.#client;
    if (!client?.isReady) throw new Error('the rate-limit store (redis) is not connected');
    const options = { keys: [KEY_PREFIX + key], arguments: this.#args };
    let reply: unknown;
    try {
      this.#sha ??= await client.scriptLoad(TAKE_SCRIPT);
      reply = await client.evalSha(this.#sha, options);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      reply = await client.eval(TAKE_SCRIPT, options);
    }
    const [allowed, retryAfterMs] = reply as [number, number];
    return { allowed: allowed === 1, retryAfterMs: Number(retryAfterMs) };
  }

  async close(): Promise<void> {
    const client = this.#client;
    if (client?.isReady) await client.close().catch(() => client.destroy());
    else if (client?.isOpen) client.destroy(); // still reconnecting: nothing to finish
  }
}

/** How long start-up waits for Redis before serving anyway (fail open). */
const CONNECT_TIMEOUT_MS = 5_000;
