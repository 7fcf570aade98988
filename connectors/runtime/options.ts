import { z } from 'zod';
import { outboundAuthSchema } from './outbound-auth.ts';

// Validators for config options, each with a message that reads "expected …" (the config loader
// appends ", got <value>" and the key path). Public: a user's connector schema uses them too.
export const positiveInt = (what = 'a positive integer') =>
  z.number({ error: `expected ${what}` }).int({ error: `expected ${what}` }).positive({ error: `expected ${what}` });
export const nonNegativeInt = (what = 'a whole number of 0 or more') =>
  z.number({ error: `expected ${what}` }).int({ error: `expected ${what}` }).min(0, { error: `expected ${what}` });
export const bool = () => z.boolean({ error: 'expected true or false' });
/** A non-empty string. */
export const str = (what = 'a string') => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });
/**
 * A URL option's parts, for checking it without echoing it (it may hold a password): its scheme,
 * lower-cased (undefined without one), and the parsed URL (undefined when it does not parse).
 */
export function urlParts(value: string): { scheme: string | undefined; url: URL | undefined } {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
  return { scheme, url: URL.canParse(value) ? new URL(value) : undefined };
}

/** An http:// or https:// URL. */
export const httpUrl = () => z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

/** Retries after the first attempt, with exponential backoff and full jitter. */
export const retrySchema = z
  .strictObject({
    /** Default 2. Retries after the first attempt (0 turns retries off). */
    attempts: nonNegativeInt().default(2),
    /** Default 100. Backoff base: retry n waits a random time in [0, min(maxDelayMs, baseDelayMs × 2^n)]. */
    baseDelayMs: positiveInt().default(100),
    /** Default 2000. Longest backoff between two attempts. */
    maxDelayMs: positiveInt().default(2000),
    /** Default 10000. A Retry-After longer than this is not waited for: the call fails at once. */
    maxRetryAfterMs: positiveInt().default(10_000),
  })
  .prefault({});

/** The connector's circuit breaker (opossum). */
export const breakerSchema = z
  .strictObject({
    /** Default true. */
    enabled: bool().default(true),
    /** Default 50. Failure percentage over the window that opens the breaker. */
    errorThresholdPercentage: z
      .number({ error: 'expected a percentage (1-100)' })
      .min(1, { error: 'expected a percentage (1-100)' })
      .max(100, { error: 'expected a percentage (1-100)' })
      .default(50),
    /** Default 5. Calls in the window before the breaker may open (opossum's own default, 0, opens on the first failure). */
    volumeThreshold: nonNegativeInt().default(5),
    /** Default 10000. The rolling window failures are counted over. */
    windowMs: positiveInt().default(10_000),
    /** Default 30000. How long the breaker stays open before one trial call (half-open). */
    resetTimeoutMs: positiveInt().default(30_000),
    /** Default false. While open, serve a field's last cached value (marked stale) instead of CIRCUIT_OPEN. */
    staleIfOpen: bool().default(false),
  })
  .prefault({});

/** A token bucket: `rps` calls a second on average, bursts of up to `burst`. */
export const rateLimitSchema = z
  .strictObject({
    rps: z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' }),
    /** Default: rps (at least 1). */
    burst: positiveInt().optional(),
    /** Default 0. How long a call may wait for a token before failing with RATE_LIMITED. */
    maxWaitMs: nonNegativeInt().default(0),
  })
  .transform((r) => ({ ...r, burst: r.burst ?? Math.max(1, Math.ceil(r.rps)) }));

/** Options every connector type shares (SPEC §3), merged into each type's own schema. */
export const commonOptions = {
  type: z.string(),
  /** Default false. When true, /readyz answers 503 while this connector is unhealthy. */
  required: bool().default(false),
  /** Default 10000. Each attempt's deadline. */
  timeoutMs: positiveInt().default(10_000),
  retry: retrySchema,
  breaker: breakerSchema,
  rateLimit: rateLimitSchema.optional(),
  /** Default: none. A TTL that caches every safe (read) call of the connector; `@cache` overrides per field. */
  cache: z.strictObject({ ttlMs: positiveInt() }).optional(),
  auth: outboundAuthSchema.optional(),
  /** Default {}. Headers sent with every call. */
  headers: z.record(z.string(), z.string({ error: 'expected a header value (a string)' })).default({}),
};

const commonSchema = z.object(commonOptions);
export type CommonOptions = z.output<typeof commonSchema>;

/**
 * A connector type's config schema: the common options (`type`, `timeoutMs`, `retry`, `breaker`,
 * `rateLimit`, `cache`, `auth`, `headers`, `required`) plus the type's own keys. Unknown keys are
 * refused with their key path.
 */
export function connectorConfig<S extends z.ZodRawShape>(shape: S) {
  return z.strictObject({ ...commonOptions, ...shape });
}
