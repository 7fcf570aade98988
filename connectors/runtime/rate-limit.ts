/**
 * A token bucket: refills `rps` tokens a second up to `burst`. A call takes one token, waiting
 * for it when the wait is at most `maxWaitMs`; otherwise `take()` answers how long to wait.
 */
export class TokenBucket {
  #tokens: number;
  #updated: number;

  constructor(
    private readonly rps: number,
    private readonly burst: number,
    private readonly maxWaitMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#updated = now();
  }

  /**
   * Takes a token: resolves once it is this call's turn, or returns the milliseconds until a
   * token would be free when that is longer than `maxWaitMs` (nothing is taken then).
   */
  async take(): Promise<number | undefined> {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#updated) / 1000) * this.rps);
    this.#updated = now;
    const waitMs = this.#tokens >= 1 ? 0 : ((1 - this.#tokens) / this.rps) * 1000;
    if (waitMs > this.maxWaitMs) return waitMs;
    // Reserve the token now (the bucket may go below zero), so callers queue in order.
    this.#tokens -= 1;
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    return undefined;
  }
}
