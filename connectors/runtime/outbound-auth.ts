import { createHash } from 'node:crypto';
import { z } from 'zod';
import { statusFailure, UpstreamError } from './errors.ts';

/**
 * Outbound credentials of a connector (SPEC §3, the connector's `auth` key): what the runtime
 * calls for every HTTP request it makes to an upstream.
 *
 * - `apiKey`: a header (default `X-API-Key`) or a query parameter carrying a fixed key.
 * - `bearer`: `Authorization: Bearer <token>` with a fixed token.
 * - `basic`: `Authorization: Basic <base64(user:pass)>` (RFC 7617, UTF-8).
 * - `oauth2`: the client-credentials grant (RFC 6749 §4.4). The access token is fetched once for
 *   all concurrent callers, cached, refreshed `refreshSkewMs` before `expires_in` runs out, and
 *   dropped when the upstream answers 401 (the caller retries once with a fresh one).
 *
 * Every value here is a secret (everything under `auth` is, SPEC §3): the schema's messages never
 * repeat a value, errors never contain the client secret or a token, and `identity` is a hash.
 */

// ---- schema -------------------------------------------------------------------------------
// Messages read "expected …" like src/config.ts; the config loader appends ", got <value>" and
// redacts the value itself because it sits under an `auth` key.

const str = (what: string) => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

const AUTH_TYPES = ['apiKey', 'bearer', 'basic', 'oauth2'] as const;

const apiKeySchema = z
  .strictObject({
    type: z.literal('apiKey'),
    /** Default "header". Where the key goes: a request header or a query parameter. */
    in: z.enum(['header', 'query'], { error: 'expected "header" or "query"' }).default('header'),
    /** The header or query parameter name. Default "X-API-Key" for a header; required for a query. */
    name: str('a header or query parameter name').optional(),
    /** The key itself. */
    value: str('the API key (a non-empty string)'),
  })
  .superRefine((a, ctx) => {
    if (a.in === 'query' && a.name === undefined) {
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'expected the query parameter name (required when in is "query")' });
    }
    if (a.in === 'header' && a.name !== undefined && !HEADER_NAME.test(a.name)) {
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'expected a header name (letters, digits and !#$%&\'*+-.^_`|~)' });
    }
  })
  .transform((a) => ({ type: a.type, in: a.in, name: a.name ?? 'X-API-Key', value: a.value }));

// RFC 9110 §5.6.2 token characters.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const bearerSchema = z.strictObject({
  type: z.literal('bearer'),
  /** Sent as `Authorization: Bearer <token>`. */
  token: str('a token (a non-empty string)'),
});

const basicSchema = z.strictObject({
  type: z.literal('basic'),
  /** RFC 7617 §2: a user-id cannot contain a colon. */
  username: str('a username').refine((u) => !u.includes(':'), { error: 'expected a username without ":" (RFC 7617)' }),
  password: z.string({ error: 'expected a password (a string)' }),
});

const SKEW_MESSAGE = 'expected a number of milliseconds (an integer, 0 or more)';

const oauth2Schema = z.strictObject({
  type: z.literal('oauth2'),
  /** The token endpoint: an http or https URL. */
  tokenUrl: z.url({ protocol: /^https?$/, error: 'expected the token endpoint URL (http or https)' }),
  clientId: str('a client id'),
  clientSecret: str('a client secret'),
  /** Space-separated scopes requested with the token. */
  scope: str('a scope (space-separated scopes)').optional(),
  /** Sent as `audience` (Auth0, Okta and others require it for API tokens). */
  audience: str('an audience').optional(),
  /** Default 30000: refresh this long before expires_in runs out. */
  refreshSkewMs: z
    .number({ error: SKEW_MESSAGE })
    .int({ error: SKEW_MESSAGE })
    .min(0, { error: SKEW_MESSAGE })
    .default(30_000),
  /** Default "body": client credentials in the form body, or "basic" in an Authorization header. */
  clientAuth: z.enum(['body', 'basic'], { error: 'expected "body" or "basic"' }).default('body'),
});

const schema = z.discriminatedUnion('type', [apiKeySchema, bearerSchema, basicSchema, oauth2Schema], {
  error: (issue) =>
    // zod types this issue as invalid_union only, but a non-object input arrives as invalid_type.
    (issue.code as string) === 'invalid_type'
      ? `expected a mapping with a type (${AUTH_TYPES.join(', ')})`
      : `expected an auth type: ${AUTH_TYPES.join(', ')}`,
});

/** A connector's outbound `auth` once validated, defaults filled in. */
export type OutboundAuthConfig = z.output<typeof schema>;
/** What a configuration file may write under `auth` (defaults optional). */
export type OutboundAuthInput = z.input<typeof schema>;

/** zod schema of a connector's `auth` key (a discriminated union on `type`). */
export const outboundAuthSchema: z.ZodType<OutboundAuthConfig> = schema;

// ---- runtime ------------------------------------------------------------------------------

export interface OutboundRequest {
  url: URL;
  headers: Headers;
}

export interface OutboundAuth {
  /** Adds credentials to the request (header or query parameter). For oauth2, fetches the token first if needed. */
  apply(request: OutboundRequest, signal?: AbortSignal): Promise<void>;
  /**
   * Called when the upstream answered 401. Returns true when the caller should retry the call once
   * (oauth2: the cached token was dropped and a fresh one will be fetched); false for static credentials.
   */
  unauthorized(): Promise<boolean>;
  /** A stable identity of the credentials for cache keys (e.g. a hash of the clientId/apiKey), never the secret itself. */
  readonly identity: string;
}

export interface OutboundAuthDeps {
  /** Default: the global fetch. The runtime passes its own dispatcher-bound fetch. */
  fetch?: typeof fetch;
  /** Default: a monotonic clock in milliseconds. Only differences between its values matter. */
  now?: () => number;
  /**
   * The connector the credentials belong to, named by token endpoint errors (HttpTransport
   * passes its connector's name). Default "".
   */
  connector?: string;
}

/**
 * Thrown when the OAuth2 token endpoint fails (down, non-2xx, bad JSON, no access_token): an
 * `UPSTREAM_ERROR` of the connector whose call needed the token.
 * Judged by the token endpoint's status like any upstream answer: unreachable, 408, 429 and 5xx
 * are transient and counted by the breaker; a 4xx (RFC 6749 §5.2: `invalid_client`,
 * `invalid_scope`, `unauthorized_client`…) refuses the configured credentials, so asking again
 * would be refused again and the endpoint is not failing: neither retried nor counted.
 * `status` is the token endpoint's, not put in `extensions` (a client would take it for the API's).
 */
export class TokenEndpointError extends UpstreamError {
  readonly #status: number | undefined;

  constructor(connector: string, message: string, status?: number) {
    super(connector, message, statusFailure(status));
    this.#status = status;
  }

  override get status(): number | undefined {
    return this.#status;
  }
}

export function createOutboundAuth(config: OutboundAuthConfig, deps: OutboundAuthDeps = {}): OutboundAuth {
  switch (config.type) {
    case 'apiKey': {
      const { name, value } = config;
      return staticAuth(identityOf('apiKey', config.in, name, value), ({ url, headers }) => {
        if (config.in === 'header') headers.set(name, value);
        else url.searchParams.set(name, value);
      });
    }
    case 'bearer': {
      const header = `Bearer ${config.token}`;
      return staticAuth(identityOf('bearer', config.token), ({ headers }) => headers.set('authorization', header));
    }
    case 'basic': {
      const header = `Basic ${Buffer.from(`${config.username}:${config.password}`, 'utf8').toString('base64')}`;
      // The user is the principal: its permissions, not its password, decide what it may see.
      return staticAuth(identityOf('basic', config.username), ({ headers }) => headers.set('authorization', header));
    }
    case 'oauth2':
      return new OAuth2ClientCredentials(config, deps);
  }
}

/**
 * `<type>:<first 16 hex digits of a SHA-256>` of what identifies the principal. For apiKey and
 * bearer the key is the only identity there is, so it is hashed (a one-way digest, never shown);
 * for basic and oauth2 no secret goes in at all.
 */
function identityOf(type: string, ...parts: string[]): string {
  const hash = createHash('sha256').update(JSON.stringify([type, ...parts])).digest('hex');
  return `${type}:${hash.slice(0, 16)}`;
}

function staticAuth(identity: string, add: (request: OutboundRequest) => void): OutboundAuth {
  return {
    identity,
    apply: async (request) => add(request),
    // The same credentials would be refused again: no retry.
    unauthorized: async () => false,
  };
}

// ---- oauth2 client credentials --------------------------------------------------------------

type OAuth2Config = Extract<OutboundAuthConfig, { type: 'oauth2' }>;

interface CachedToken {
  value: string;
  /** Clock time from which a new token is fetched; undefined: kept until a 401. */
  refreshAt: number | undefined;
}

/** How long one token request may take before it fails (the callers' own signals aside). */
const TOKEN_TIMEOUT_MS = 10_000;

class OAuth2ClientCredentials implements OutboundAuth {
  readonly identity: string;
  readonly #config: OAuth2Config;
  readonly #connector: string;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  /** origin + path of the token endpoint: what error messages name (no query, no user-info). */
  readonly #where: string;
  #token: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;

  constructor(config: OAuth2Config, deps: OutboundAuthDeps) {
    this.#config = config;
    this.#connector = deps.connector ?? '';
    this.#fetch = deps.fetch ?? ((input, init) => fetch(input, init));
    this.#now = deps.now ?? (() => performance.now());
    const url = new URL(config.tokenUrl);
    this.#where = `${url.origin}${url.pathname}`;
    this.identity = identityOf('oauth2', this.#where, config.clientId, config.scope ?? '', config.audience ?? '');
  }

  async apply(request: OutboundRequest, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const token = await this.#currentToken(signal);
    request.headers.set('authorization', `Bearer ${token}`);
  }

  async unauthorized(): Promise<boolean> {
    // Whatever token is cached was refused (or is about to be): the next apply() fetches a new
    // one. A request already in flight to the token endpoint will bring a fresh one anyway.
    this.#token = undefined;
    return true;
  }

  #currentToken(signal: AbortSignal | undefined): Promise<string> {
    const cached = this.#token;
    if (cached && (cached.refreshAt === undefined || this.#now() < cached.refreshAt)) {
      return Promise.resolve(cached.value);
    }
    // Single flight: every caller waits for the same token request. One caller giving up
    // (its signal) does not cancel the request the others wait for.
    if (!this.#inflight) {
      const request = this.#requestToken().then((token) => {
        this.#token = token;
        return token;
      });
      this.#inflight = request;
      // A failure is not cached: the next apply() after it tries again.
      const clear = () => {
        if (this.#inflight === request) this.#inflight = undefined;
      };
      request.then(clear, clear);
    }
    return untilAborted(
      this.#inflight.then((t) => t.value),
      signal,
    );
  }

  async #requestToken(): Promise<CachedToken> {
    const { clientId, clientSecret, scope, audience, clientAuth, refreshSkewMs } = this.#config;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope !== undefined) form.set('scope', scope);
    if (audience !== undefined) form.set('audience', audience);
    const headers = new Headers({
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    });
    if (clientAuth === 'basic') {
      // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64-encoded.
      const pair = `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`;
      headers.set('authorization', `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`);
    } else {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    }

    const sentAt = this.#now();
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(this.#config.tokenUrl, {
        method: 'POST',
        headers,
        body: form.toString(),
        // A token endpoint does not redirect; following one would send the secret elsewhere.
        redirect: 'manual',
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (error) {
      throw new TokenEndpointError(this.#connector, `OAuth2 token endpoint ${this.#where} ${unreachable(error)}`);
    }

    const status = response.status;
    const json = parseJson(text);
    if (status < 200 || status > 299) {
      const detail = this.#oauthError(json);
      throw new TokenEndpointError(
        this.#connector,
        `OAuth2 token endpoint ${this.#where} answered ${status}${detail ? ` (${detail})` : ''}`,
        status,
      );
    }
    if (json === undefined || typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new TokenEndpointError(this.#connector, `OAuth2 token endpoint ${this.#where} answered ${status} without a JSON object`, status);
    }
    const body = json as Record<string, unknown>;
    const accessToken = body.access_token;
    if (typeof accessToken !== 'string' || accessToken.length === 0) {
      throw new TokenEndpointError(this.#connector, `OAuth2 token endpoint ${this.#where} answered ${status} without an access_token`, status);
    }
    return { value: accessToken, refreshAt: refreshTime(sentAt, body.expires_in, refreshSkewMs) };
  }

  /** RFC 6749 §5.2 `error` and `error_description`, shortened and without the client secret. */
  #oauthError(json: unknown): string {
    if (!json || typeof json !== 'object') return '';
    const { error, error_description: description } = json as Record<string, unknown>;
    const parts = [error, description].filter((p): p is string => typeof p === 'string' && p.length > 0);
    let text = parts.join(': ');
    const secret = this.#config.clientSecret;
    for (const form of [secret, encodeURIComponent(secret), Buffer.from(secret, 'utf8').toString('base64')]) {
      text = text.split(form).join('[REDACTED]');
    }
    return text.length > 200 ? `${text.slice(0, 197)}...` : text;
  }
}

/**
 * When a token obtained at `sentAt` must be replaced: `skewMs` before `expires_in` runs out, but
 * never earlier than half its lifetime (a 20 s token with a 30 s skew would otherwise be fetched
 * again for every call). No usable `expires_in`: kept until a 401.
 */
function refreshTime(sentAt: number, expiresIn: unknown, skewMs: number): number | undefined {
  const seconds = typeof expiresIn === 'string' && expiresIn.trim() !== '' ? Number(expiresIn) : expiresIn;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) return undefined;
  const lifetime = seconds * 1000;
  return sentAt + Math.max(lifetime - skewMs, lifetime / 2);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Why a token request got no answer, from the fetch error (never its URL or body). */
function unreachable(error: unknown): string {
  const e = error as { name?: unknown; cause?: { code?: unknown } };
  if (e?.name === 'TimeoutError') return `did not answer within ${TOKEN_TIMEOUT_MS} ms`;
  const code = e?.cause?.code;
  return `is unreachable${typeof code === 'string' ? ` (${code})` : ''}`;
}

/** The promise, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
