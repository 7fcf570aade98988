import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  BaseConnector,
  CircuitOpenError,
  type ConnectorDeps,
  type ConnectorStatus,
  connectorConfig,
  type InboundRequest,
  type InboundResponse,
  type InboundRoute,
  MAX_ID_LENGTH,
  parseJsonPayload,
  positiveInt,
  RateLimitedError,
  str,
  utf8,
  z,
} from '../../src/index.ts';
import {
  type HmacAlgorithm,
  isStandardSecret,
  type RejectReason,
  type Verdict,
  verifyGithub,
  verifyHmac,
  verifySlack,
  verifyStandard,
  verifyStripe,
} from './verify.ts';

/** The signature schemes SPEC §6 names. */
export const SCHEMES = ['github', 'stripe', 'slack', 'standard', 'hmac'] as const;
export type Scheme = (typeof SCHEMES)[number];

// RFC 9110 §5.6.2 token characters.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const headerName = (what: string) =>
  str(what).regex(HEADER_NAME, { error: `expected ${what} (letters, digits and !#$%&'*+-.^_\`|~)` });

/** Keys that only the `hmac` scheme reads: refused with another scheme rather than ignored. */
const HMAC_ONLY = ['header', 'algorithm', 'encoding', 'prefix', 'typeHeader', 'idHeader', 'timestampHeader'] as const;

/** Seconds a sender is asked to wait (Retry-After) when the event log cannot store its event. */
const RETRY_AFTER_SEC = 5;

export const webhookConfigSchema = connectorConfig({
  /** How requests are signed: github, stripe, slack, standard (Standard Webhooks) or hmac. */
  scheme: z.enum(SCHEMES, { error: `expected one of ${SCHEMES.join(', ')}` }),
  /** The signing secret, or a list of them: a request signed with any one is accepted (rotation). */
  secret: z.union([str('a secret'), z.array(str('a secret'), { error: 'expected a list of secrets' }).min(1, { error: 'expected at least one secret' })], {
    error: 'expected a secret (a non-empty string) or a list of them',
  }),
  /** Default 300. Seconds a signed timestamp may be away from now, in the past or the future. */
  toleranceSec: positiveInt().default(300),
  /** Default 1048576 (1 MiB). A larger body is answered 413 and never read further. */
  maxBodyBytes: positiveInt().default(1024 * 1024),
  /** hmac: the header that carries the signature (required). */
  header: headerName('a header name').optional(),
  /** hmac, default sha256: sha256, sha1 or sha512. */
  algorithm: z.enum(['sha256', 'sha1', 'sha512'], { error: 'expected sha256, sha1 or sha512' }).optional(),
  /** hmac, default hex: how the signature is written, hex or base64. */
  encoding: z.enum(['hex', 'base64'], { error: 'expected hex or base64' }).optional(),
  /** hmac, default none: text before the signature in the header (`sha256=`). */
  prefix: z.string({ error: 'expected a string' }).optional(),
  /** hmac, default none: a header with the event type; else the JSON body's `type` field. */
  typeHeader: headerName('a header name').optional(),
  /** hmac, default none: a header with the delivery id; else the body's `id` field; else the body's SHA-256. */
  idHeader: headerName('a header name').optional(),
  /** hmac, default none: a header with the send time (Unix seconds); then `<timestamp>.<body>` is what is signed. */
  timestampHeader: headerName('a header name').optional(),
}).superRefine((c, ctx) => {
  // Key names only in these messages, never a value: `params.complete` stops the loader adding one.
  if (c.scheme === 'hmac' && c.header === undefined) {
    ctx.addIssue({ code: 'custom', path: ['header'], message: 'expected the signature header name (required with scheme hmac)', params: { complete: true } });
  }
  if (c.scheme !== 'hmac') {
    for (const key of HMAC_ONLY) {
      if (c[key] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `is for scheme hmac only (scheme is ${c.scheme})`, params: { complete: true } });
      }
    }
  }
  if (c.scheme === 'standard') {
    const secrets = typeof c.secret === 'string' ? [c.secret] : c.secret;
    if (!secrets.every(isStandardSecret)) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'expected a Standard Webhooks secret: whsec_ followed by base64', params: { complete: true } });
    }
  }
});
export type WebhookConfig = z.output<typeof webhookConfigSchema>;

type WebhookStats = NonNullable<ConnectorStatus['webhook']>;

/** Why a request was refused, as counted: a signature problem (401), a malformed body (400), or the log (503/429). */
type Rejection = RejectReason | 'malformed' | 'unavailable' | 'rate_limited';

/** What a verified body says: the event to store, or an answer to give at once (Slack's challenge). */
type Extracted = { type: string; deliveryId: string; payload: unknown } | { answer: InboundResponse };

/**
 * `type: webhook`: receives `POST /webhooks/<name>`, verifies the sender's signature over the
 * raw bytes, and appends the event to the hub's event log with the sender's own event type and
 * delivery id. Answers: 202 stored, 200 a redelivery (stored once), 401 refused signature,
 * 400 malformed body, 413 too large (the hub), 503 + Retry-After when the log cannot store it.
 *
 * The append goes through `call()` — not retried (the sender retries on 503, and holding its
 * request through backoffs would outlast its own timeout), but under `timeoutMs` and the
 * breaker: a log that hangs or fails answers 503 fast, shows in `hub { connectors }`
 * (healthy, breaker, failures, lastError), and a late append is harmless (the retry is a duplicate).
 */
export class WebhookConnector extends BaseConnector<WebhookConfig> {
  readonly inbound: InboundRoute;
  readonly #secrets: readonly string[];
  readonly #verify: (body: Buffer, headers: IncomingHttpHeaders) => Verdict;
  readonly #stats = { received: 0, stored: 0, duplicates: 0, lastEventAt: null as string | null };
  readonly #rejected = new Map<Rejection, number>();

  constructor(name: string, config: WebhookConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.#secrets = typeof config.secret === 'string' ? [config.secret] : [...config.secret];
    this.#verify = this.#verifier();
    this.inbound = { maxBodyBytes: config.maxBodyBytes, handle: (request) => this.#handle(request) };
  }

  /** Nothing to reach: the connector only receives. */
  protected async ping(): Promise<void> {}

  override status(): ConnectorStatus {
    const webhook: WebhookStats = {
      ...this.#stats,
      rejected: [...this.#rejected.values()].reduce((a, b) => a + b, 0),
      rejectedByReason: [...this.#rejected].map(([reason, count]) => ({ reason, count })),
    };
    return { ...super.status(), webhook };
  }

  #verifier(): (body: Buffer, headers: IncomingHttpHeaders) => Verdict {
    const c = this.config;
    const options = { secrets: this.#secrets, toleranceSec: c.toleranceSec };
    switch (c.scheme) {
      case 'github':
        return (body, headers) => verifyGithub(body, headers, options);
      case 'stripe':
        return (body, headers) => verifyStripe(body, headers, options);
      case 'slack':
        return (body, headers) => verifySlack(body, headers, options);
      case 'standard':
        return (body, headers) => verifyStandard(body, headers, options);
      case 'hmac': {
        const hmac = {
          ...options,
          header: c.header!,
          algorithm: (c.algorithm ?? 'sha256') as HmacAlgorithm,
          encoding: c.encoding ?? 'hex',
          prefix: c.prefix,
          timestampHeader: c.timestampHeader,
        };
        return (body, headers) => verifyHmac(body, headers, hmac);
      }
    }
  }

  async #handle(request: InboundRequest): Promise<InboundResponse> {
    if (request.url.pathname !== '/') return { status: 404, body: { error: `not found; send POST /webhooks/${this.name}` } };
    this.#stats.received++;
    this.deps.metrics.event?.(this.name, 'received');

    // The signature first: a sender that cannot sign learns nothing about what the body needs.
    const verdict = this.#verify(request.body, request.headers);
    if (!verdict.ok) return this.#reject(verdict.reason, 401, verdict.message);

    const payload = parseBody(request.body, this.config.scheme === 'github' ? request.headers['content-type'] : undefined);
    if (typeof payload === 'string') return this.#reject('malformed', 400, payload);
    const extracted = this.#extract(payload, request);
    if (typeof extracted === 'string') return this.#reject('malformed', 400, extracted);
    if ('answer' in extracted) return extracted.answer;
    for (const [what, value] of [['event type', extracted.type], ['delivery id', extracted.deliveryId]] as const) {
      if (value.length > MAX_ID_LENGTH) return this.#reject('malformed', 400, `the ${what} is longer than ${MAX_ID_LENGTH} characters`);
    }

    let result: Awaited<ReturnType<ConnectorDeps['eventLog']['append']>>;
    try {
      const event = { source: this.name, type: extracted.type, deliveryId: extracted.deliveryId, payload: extracted.payload };
      ({ value: result } = await this.call({
        key: `append:${extracted.deliveryId}`,
        safe: false,
        retryable: false,
        attempt: () => this.deps.eventLog.append(event),
      }));
    } catch (error) {
      if (error instanceof RateLimitedError) {
        const seconds = Math.max(1, Math.ceil(Number(error.details.retryAfterMs ?? 1000) / 1000));
        return this.#reject('rate_limited', 429, 'over this webhook source\'s rate limit; retry later', { 'retry-after': String(seconds) });
      }
      const seconds = error instanceof CircuitOpenError ? Math.ceil(this.config.breaker.resetTimeoutMs / 1000) : RETRY_AFTER_SEC;
      this.deps.logger.error({ err: error, deliveryId: extracted.deliveryId }, 'webhook event not stored');
      return this.#reject('unavailable', 503, 'the event could not be stored; retry later', { 'retry-after': String(seconds) });
    }

    const { event, duplicate } = result;
    if (duplicate) {
      this.#stats.duplicates++;
      this.deps.metrics.event?.(this.name, 'duplicate');
      return { status: 200, body: { id: event.id, duplicate: true } };
    }
    this.#stats.stored++;
    this.#stats.lastEventAt = event.receivedAt;
    this.deps.metrics.event?.(this.name, 'stored');
    return { status: 202, body: { id: event.id, duplicate: false } };
  }

  #reject(reason: Rejection, status: number, message: string, headers?: Record<string, string>): InboundResponse {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + 1);
    this.deps.metrics.eventRejected?.(this.name, reason);
    if (status < 500) this.deps.logger.info({ status, reason }, `webhook refused: ${message}`);
    return { status, body: { error: message }, ...(headers && { headers }) };
  }

  /** The event type, delivery id and payload by the sender's own conventions; a string says what is missing. */
  #extract(payload: unknown, request: InboundRequest): Extracted | string {
    const { headers } = request;
    const body = isObject(payload) ? payload : {};
    switch (this.config.scheme) {
      case 'github': {
        const event = header(headers, 'x-github-event');
        if (event === undefined) return 'missing X-GitHub-Event header';
        const deliveryId = header(headers, 'x-github-delivery');
        if (deliveryId === undefined) return 'missing X-GitHub-Delivery header';
        const action = nonEmpty(body.action);
        return { type: action === undefined ? event : `${event}.${action}`, deliveryId, payload };
      }
      case 'stripe': {
        const type = nonEmpty(body.type);
        if (type === undefined) return 'the body has no "type" (a Stripe event)';
        const deliveryId = nonEmpty(body.id);
        if (deliveryId === undefined) return 'the body has no "id" (a Stripe event)';
        return { type, deliveryId, payload };
      }
      case 'slack': {
        if (body.type === 'url_verification') {
          const challenge = nonEmpty(body.challenge);
          if (challenge === undefined) return 'url_verification without a "challenge"';
          return { answer: { status: 200, body: { challenge } } };
        }
        const event = isObject(body.event) ? body.event : {};
        const type = nonEmpty(event.type);
        if (type === undefined) return 'the body has no "event.type" (a Slack Events API callback)';
        const deliveryId = nonEmpty(body.event_id);
        if (deliveryId === undefined) return 'the body has no "event_id" (a Slack Events API callback)';
        return { type, deliveryId, payload };
      }
      case 'standard': {
        const type = nonEmpty(body.type);
        if (type === undefined) return 'the body has no "type" (Standard Webhooks)';
        // Present: the signature covers it.
        return { type, deliveryId: header(headers, 'webhook-id')!, payload };
      }
      case 'hmac': {
        const { typeHeader, idHeader } = this.config;
        let type: string | undefined;
        if (typeHeader !== undefined) {
          type = header(headers, typeHeader.toLowerCase());
          if (type === undefined) return `missing ${typeHeader} header`;
        } else {
          type = nonEmpty(body.type);
          if (type === undefined) return 'the body has no "type" (set typeHeader when the type is sent in a header)';
        }
        let deliveryId: string | undefined;
        if (idHeader !== undefined) {
          deliveryId = header(headers, idHeader.toLowerCase());
          if (deliveryId === undefined) return `missing ${idHeader} header`;
        } else {
          const id = body.id;
          deliveryId = typeof id === 'number' && Number.isFinite(id) ? String(id) : nonEmpty(id);
          // No id anywhere: the same bytes are the same delivery.
          deliveryId ??= `sha256:${createHash('sha256').update(request.body).digest('hex')}`;
        }
        return { type, deliveryId, payload };
      }
    }
  }
}

/**
 * The body's JSON (for GitHub's form content type, the JSON in its `payload` field); a string
 * says why it is not.
 */
export function parseBody(body: Buffer, githubContentType?: string): unknown {
  let text = utf8(body);
  if (text === undefined) return 'the body is not valid UTF-8';
  if (githubContentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    const field = new URLSearchParams(text).get('payload');
    if (field === null) return 'the form body has no "payload" field';
    text = field;
  }
  const parsed = parseJsonPayload(text);
  return 'problem' in parsed ? parsed.problem : parsed.value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined || text.trim() === '' ? undefined : text.trim();
}
