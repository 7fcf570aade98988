import { ConnectorError, UpstreamError } from './errors.ts';

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
}

/**
 * How long to wait before retry number `retry` (0-based) after `error`, or undefined when it
 * must not be retried: the error is not transient, or the upstream asked for a longer pause
 * than `maxRetryAfterMs`. Backoff is exponential with full jitter; a Retry-After wins over it.
 */
export function retryDelay(error: unknown, retry: number, policy: RetryPolicy, random = Math.random): number | undefined {
  if (retry >= policy.attempts) return undefined;
  if (!(error instanceof ConnectorError) || !error.transient) return undefined;
  if (error instanceof UpstreamError && error.retryAfterMs !== undefined) {
    return error.retryAfterMs <= policy.maxRetryAfterMs ? error.retryAfterMs : undefined;
  }
  return random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
}

/** Parses a Retry-After header: delay seconds or an HTTP-date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
