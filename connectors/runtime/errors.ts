import { ErrorCode } from '../../src/errors.ts';

/**
 * The one error base of every connector. Its `extensions` become the GraphQL error's (graphql-js
 * copies an original error's `extensions`), so the code, the connector and the details reach the
 * client from here, without a mapping in every resolver. Messages must hold no secret; the hub
 * scrubs them again anyway.
 */
export abstract class ConnectorError extends Error {
  abstract readonly code: ErrorCode;
  /** Whether trying again later may succeed (network errors, 5xx, 408, 429, timeouts). */
  readonly transient: boolean = false;
  /** Whether the breaker counts it: the upstream misbehaved, not the caller. */
  readonly countsAsFailure: boolean = true;

  constructor(
    readonly connector: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }

  get extensions(): Record<string, unknown> {
    return { code: this.code, connector: this.connector, ...this.details };
  }
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/**
 * What an answer's status (none: no answer at all) says by default. Transient: network errors,
 * 408, 429, 500, 502, 503, 504. Counted by the breaker: no answer, 5xx, 408 and 429 (the system
 * failed); a 4xx is the caller's mistake (not found, bad input, credentials refused), not an outage.
 */
export function statusFailure(status: number | undefined): { transient: boolean; countsAsFailure: boolean } {
  return {
    transient: status === undefined || TRANSIENT_STATUS.has(status),
    countsAsFailure: status === undefined || status >= 500 || status === 408 || status === 429,
  };
}

/**
 * The external system answered with an error, or could not be reached. A 429 the upstream
 * still answers after the retries is RATE_LIMITED: the client should back off as well.
 */
export class UpstreamError extends ConnectorError {
  readonly code: ErrorCode;
  override readonly transient: boolean;
  override readonly countsAsFailure: boolean;
  /** From a Retry-After header, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    connector: string,
    message: string,
    options: {
      status?: number;
      retryAfterMs?: number;
      transient?: boolean;
      /** Default: by status (5xx, 408, 429, or no status: the system failed). */
      countsAsFailure?: boolean;
      details?: Record<string, unknown>;
    } = {},
  ) {
    super(connector, message, {
      ...(options.status !== undefined && { status: options.status }),
      ...(options.retryAfterMs !== undefined && { retryAfterMs: options.retryAfterMs }),
      ...options.details,
    });
    const { status } = options;
    this.code = status === 429 ? ErrorCode.RATE_LIMITED : ErrorCode.UPSTREAM_ERROR;
    const byStatus = statusFailure(status);
    this.transient = options.transient ?? byStatus.transient;
    this.countsAsFailure = options.countsAsFailure ?? byStatus.countsAsFailure;
    this.retryAfterMs = options.retryAfterMs;
  }

  get status(): number | undefined {
    return this.details.status as number | undefined;
  }
}

/** The external system did not answer within the connector's `timeoutMs`. */
export class UpstreamTimeoutError extends ConnectorError {
  readonly code = ErrorCode.UPSTREAM_TIMEOUT;
  override readonly transient = true;
  constructor(connector: string, timeoutMs: number) {
    super(connector, `${connector} did not answer within ${timeoutMs} ms`, { timeoutMs });
  }
}

/** The connector's breaker is open: the call was not made. */
export class CircuitOpenError extends ConnectorError {
  readonly code = ErrorCode.CIRCUIT_OPEN;
  override readonly countsAsFailure = false;
  constructor(connector: string) {
    super(connector, `${connector} is failing; its circuit breaker is open and the call was not made`);
  }
}

/** Over the connector's own rate limit: the call was not made. */
export class RateLimitedError extends ConnectorError {
  readonly code = ErrorCode.RATE_LIMITED;
  override readonly countsAsFailure = false;
  constructor(connector: string, retryAfterMs: number) {
    super(connector, `${connector} is over its rate limit; retry in ${Math.ceil(retryAfterMs)} ms`, {
      retryAfterMs: Math.ceil(retryAfterMs),
    });
  }
}
