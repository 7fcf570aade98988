import { Agent, request } from 'undici';
import { z } from 'zod';
import type { ConnectorDeps, ConnectorType } from '../connector.ts';
import { BaseConnector } from '../runtime/base.ts';
import { ConnectorError, UpstreamError } from '../runtime/errors.ts';
import { createOutboundAuth, type OutboundAuth } from '../runtime/outbound-auth.ts';
import { commonOptions } from '../runtime/options.ts';
import { parseRetryAfter } from '../runtime/retry.ts';
import type { Outcome } from '../runtime/runtime.ts';
import { httpDirective } from './directive.ts';

const positiveInt = (what = 'a positive integer') =>
  z.number({ error: `expected ${what}` }).int({ error: `expected ${what}` }).positive({ error: `expected ${what}` });

export const httpConfigSchema = z.strictObject({
  ...commonOptions,
  type: z.literal('http'),
  /** Every path is resolved under this URL and can never leave it. */
  baseUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  /** Default 5 MiB. A larger response fails with UPSTREAM_ERROR. */
  maxResponseBytes: positiveInt().default(5 * 1024 * 1024),
  /** Default false. Redirects are answered as errors unless this is on. */
  followRedirects: z.boolean({ error: 'expected true or false' }).default(false),
  /** Default 64. Keep-alive connections per origin. */
  connections: positiveInt().default(64),
  /** Default: none, any HTTP answer below 500 is healthy. A path whose GET must answer 2xx. */
  healthPath: z.string().startsWith('/', { error: 'expected a path starting with /' }).optional(),
});
export type HttpConfig = z.output<typeof httpConfigSchema>;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const IDEMPOTENT = new Set<HttpMethod>(['GET', 'PUT', 'DELETE']);

/** One call as a directive or a code resolver describes it. */
export interface HttpCall {
  method: HttpMethod;
  /** Below baseUrl; values already URL-encoded. */
  path: string;
  query?: [string, string][];
  headers?: Record<string, string>;
  /** JSON text. */
  body?: string | undefined;
  /** Overrides the connector's cache TTL (a field's `@cache`). */
  ttlMs?: number | undefined;
  staleIfOpen?: boolean | undefined;
}

/**
 * A REST/JSON API behind the pipeline: keep-alive pooling (undici), paths confined to baseUrl,
 * outbound auth with one refresh-and-retry on 401, a response size limit, redirects refused
 * unless asked for.
 */
export class HttpConnector extends BaseConnector<HttpConfig> {
  readonly #agent: Agent;
  readonly #base: URL;
  readonly #auth: OutboundAuth | undefined;

  constructor(name: string, config: HttpConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.#base = new URL(config.baseUrl.endsWith('/') ? config.baseUrl : `${config.baseUrl}/`);
    this.#agent = new Agent({ connections: config.connections, keepAliveTimeout: 30_000 });
    this.#auth = config.auth ? createOutboundAuth(config.auth, {}) : undefined;
  }

  /** The absolute URL of a call, or an error when the path would leave baseUrl. */
  url(path: string, query: [string, string][] = []): URL {
    const url = new URL(path.replace(/^\/+/, ''), this.#base);
    if (url.origin !== this.#base.origin || !url.pathname.startsWith(this.#base.pathname)) {
      throw new UpstreamError(this.name, `path "${path}" leaves the connector's baseUrl`, { transient: false, status: 400 });
    }
    for (const [key, value] of query) url.searchParams.append(key, value);
    return url;
  }

  /** Makes one call through the pipeline; resolves with the parsed JSON body (null for 204). */
  send(call: HttpCall): Promise<Outcome<unknown>> {
    const url = this.url(call.path, call.query);
    const headers = { ...this.config.headers, ...call.headers };
    const safe = call.method === 'GET';
    const idempotencyKey = Object.keys(headers).some((h) => h.toLowerCase() === 'idempotency-key');
    return this.runtime.execute({
      key: `${call.method} ${url.href} ${JSON.stringify(Object.entries(call.headers ?? {}).sort())} ${this.#auth?.identity ?? ''}`,
      safe,
      retryable: IDEMPOTENT.has(call.method) || idempotencyKey,
      ttlMs: call.ttlMs,
      staleIfOpen: call.staleIfOpen,
      attempt: (signal) => this.#attempt(call.method, url, headers, call.body, signal),
    });
  }

  async #attempt(method: HttpMethod, url: URL, headers: Record<string, string>, body: string | undefined, signal: AbortSignal) {
    const response = await this.#request(method, url, headers, body, signal);
    if (response.statusCode === 401 && this.#auth && (await this.#auth.unauthorized())) {
      await response.body.dump();
      return this.#read(method, url, await this.#request(method, url, headers, body, signal));
    }
    return this.#read(method, url, response);
  }

  async #request(method: HttpMethod, url: URL, headers: Record<string, string>, body: string | undefined, signal: AbortSignal) {
    const target = new URL(url);
    const sent = new Headers({ accept: 'application/json', ...headers });
    if (body !== undefined) sent.set('content-type', 'application/json');
    try {
      await this.#auth?.apply({ url: target, headers: sent }, signal);
      return await request(target, {
        method,
        headers: Object.fromEntries(sent),
        body,
        signal,
        dispatcher: this.#agent,
        maxRedirections: this.config.followRedirects ? 5 : 0,
      });
    } catch (error) {
      if (signal.aborted || error instanceof ConnectorError) throw error;
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code;
      throw new UpstreamError(this.name, `${method} ${displayUrl(url)} failed: ${cause ?? (error as Error).message}`);
    }
  }

  async #read(method: HttpMethod, url: URL, response: Awaited<ReturnType<typeof request>>): Promise<unknown> {
    const where = `${method} ${displayUrl(url)}`;
    const status = response.statusCode;
    let text: string;
    try {
      text = await readLimited(response.body, this.config.maxResponseBytes);
    } catch (error) {
      if (error instanceof ResponseTooLarge) {
        throw new UpstreamError(this.name, `${where} answered more than ${this.config.maxResponseBytes} bytes`, { status, transient: false });
      }
      throw error;
    }
    if (status >= 300 && status < 400) {
      throw new UpstreamError(this.name, `${where} answered ${status} (a redirect; set followRedirects to follow it)`, { status, transient: false });
    }
    if (status >= 400) {
      const retryAfter = status === 429 || status === 503 ? parseRetryAfter(headerOf(response.headers, 'retry-after')) : undefined;
      throw new UpstreamError(this.name, `${where} answered ${status}${upstreamMessage(text)}`, {
        status,
        ...(retryAfter !== undefined && { retryAfterMs: retryAfter }),
      });
    }
    if (status === 204 || text === '') return null;
    const type = headerOf(response.headers, 'content-type') ?? '';
    if (!/\bjson\b/i.test(type)) {
      throw new UpstreamError(this.name, `${where} answered ${type.split(';')[0] || 'no content type'}, not JSON`, { status, transient: false });
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new UpstreamError(this.name, `${where} answered malformed JSON`, { status, transient: false });
    }
  }

  protected async ping(signal: AbortSignal): Promise<void> {
    const url = this.url(this.config.healthPath ?? '/');
    const response = await request(url, { method: 'GET', signal, dispatcher: this.#agent, headers: this.config.headers });
    await response.body.dump();
    const ok = this.config.healthPath ? response.statusCode < 300 : response.statusCode < 500;
    if (!ok) throw new Error(`GET ${displayUrl(url)} answered ${response.statusCode}`);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#agent.close();
  }
}

class ResponseTooLarge extends Error {}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new ResponseTooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | null {
  const value = headers[name];
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}

/** The upstream's own error message, when its body has one, shortened. */
function upstreamMessage(text: string): string {
  let message: unknown;
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    message = body.message ?? body.error_description ?? body.error;
  } catch {
    return '';
  }
  return typeof message === 'string' && message ? `: ${message.slice(0, 200)}` : '';
}

/** A URL for messages: no query string (it may carry an API key) and no user-info. */
function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export const httpConnector: ConnectorType<HttpConfig> = {
  schema: httpConfigSchema,
  create: (name, config, deps) => new HttpConnector(name, config, deps),
  directive: httpDirective,
};
