import { createRequire } from 'node:module';
import type { Agent, Dispatcher } from 'undici';
import { ConnectorError, UpstreamError } from '../runtime/errors.ts';
import { createOutboundAuth, type OutboundAuth, type OutboundAuthConfig } from '../runtime/outbound-auth.ts';
import { parseRetryAfter } from '../runtime/retry.ts';

// undici loads with the first transport: `junction check` and `--version` do not pay for it.
const require = createRequire(import.meta.url);
let undici: typeof import('undici') | undefined;
const http = () => (undici ??= require('undici') as typeof import('undici'));

export interface TransportOptions {
  /** Keep-alive connections per origin. */
  connections: number;
  maxResponseBytes: number;
  followRedirects: boolean;
  /** Sent with every request. */
  headers: Record<string, string>;
  auth?: OutboundAuthConfig | undefined;
  /** The only hosts requests (and redirect hops) may go to; any host when absent. */
  allowHosts?: string[] | undefined;
}

/** What came back: the status, the headers and the body as text, within the size limit. */
export interface TransportResponse {
  method: string;
  url: URL;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * The innermost step of every HTTP-speaking connector (`http`, `graphql`): outbound auth, then
 * one request over a keep-alive pool (undici); on a 401 with refreshable credentials (oauth2),
 * once more with a new token. Network failures and oversized bodies become UpstreamErrors; what
 * a status means is the connector's to decide, with the helpers below.
 */
export class HttpTransport {
  readonly #connector: string;
  readonly #options: TransportOptions;
  readonly #agent: Agent;
  /** The agent, behind the host guard when `allowHosts` is set: what every request goes through. */
  readonly #dispatcher: Dispatcher;
  readonly #auth: OutboundAuth | undefined;

  constructor(connector: string, options: TransportOptions) {
    this.#connector = connector;
    this.#options = options;
    this.#agent = new (http().Agent)({ connections: options.connections, keepAliveTimeout: 30_000 });
    // With allowHosts, redirects are followed outside the host guard, so every hop passes it.
    this.#dispatcher = options.allowHosts
      ? this.#agent.compose(hostGuard(connector, options.allowHosts), http().interceptors.redirect())
      : this.#agent;
    this.#auth = options.auth ? createOutboundAuth(options.auth, { connector }) : undefined;
  }

  /** Identifies the outbound credentials in cache keys (a hash, never the secret). */
  get identity(): string {
    return this.#auth?.identity ?? '';
  }

  async send(method: string, url: URL, headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<TransportResponse> {
    let response = await this.#request(method, url, headers, body, signal);
    if (response.statusCode === 401 && this.#auth && (await this.#auth.unauthorized())) {
      await response.body.dump();
      response = await this.#request(method, url, headers, body, signal);
    }
    const limit = this.#options.maxResponseBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        response.body.destroy();
        throw new UpstreamError(this.#connector, `${method} ${displayUrl(url)} answered more than ${limit} bytes`, {
          status: response.statusCode,
          transient: false,
        });
      }
      chunks.push(chunk);
    }
    return { method, url, status: response.statusCode, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') };
  }

  async #request(method: string, url: URL, headers: Record<string, string>, body: string | undefined, signal: AbortSignal) {
    const target = new URL(url);
    const sent = new Headers({ accept: 'application/json', ...this.#options.headers, ...headers });
    if (body !== undefined) sent.set('content-type', 'application/json');
    try {
      await this.#auth?.apply({ url: target, headers: sent }, signal);
      return await http().request(target, {
        method: method as Dispatcher.HttpMethod,
        headers: Object.fromEntries(sent),
        body,
        signal,
        dispatcher: this.#dispatcher,
        maxRedirections: this.#options.followRedirects ? 5 : 0,
      });
    } catch (error) {
      if (signal.aborted || error instanceof ConnectorError) throw error;
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code;
      throw new UpstreamError(this.#connector, `${method} ${displayUrl(url)} failed: ${cause ?? (error as Error).message}`);
    }
  }

  /** A plain GET outside the pipeline, for health checks, with the connector's outbound auth. */
  async probe(url: URL, signal: AbortSignal): Promise<number> {
    const target = new URL(url);
    const headers = new Headers(this.#options.headers);
    await this.#auth?.apply({ url: target, headers }, signal);
    const response = await http().request(target, { method: 'GET', signal, dispatcher: this.#dispatcher, headers: Object.fromEntries(headers) });
    await response.body.dump();
    return response.statusCode;
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/**
 * An undici interceptor that fails, before connecting, any request to a host not in `allowHosts`
 * (`api.example.com`, `*.example.com` for its subdomains, `host:port` for one port).
 */
function hostGuard(connector: string, allowHosts: string[]): Dispatcher.DispatchInterceptor {
  const allowed = (url: URL) =>
    allowHosts.some((entry) => {
      const [host = '', port] = entry.toLowerCase().split(/:(?=\d+$)/);
      if (port !== undefined && port !== (url.port || (url.protocol === 'https:' ? '443' : '80'))) return false;
      return host.startsWith('*.') ? url.hostname.endsWith(host.slice(1)) : url.hostname === host;
    });
  return (dispatch) => (opts, handler) => {
    const origin = new URL(String(opts.origin));
    if (allowed(origin)) return dispatch(opts, handler);
    handler.onError?.(
      new UpstreamError(connector, `${opts.method} ${origin.origin}${opts.path.split('?')[0]} refused: host ${origin.host} is not in allowHosts`, {
        transient: false,
      }),
    );
    return true;
  };
}

/** `METHOD origin/path` for messages: no query string (it may carry an API key), no user-info. */
export function where(response: Pick<TransportResponse, 'method' | 'url'>): string {
  return `${response.method} ${displayUrl(response.url)}`;
}

export function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export function header(response: TransportResponse, name: string): string | null {
  const value = response.headers[name];
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}

/** The UpstreamError for an error status, with Retry-After on 429/503 and the upstream's words. */
export function statusError(connector: string, response: TransportResponse, detail: string): UpstreamError {
  const { status } = response;
  const retryAfter = status === 429 || status === 503 ? parseRetryAfter(header(response, 'retry-after')) : undefined;
  return new UpstreamError(connector, `${where(response)} answered ${status}${detail ? `: ${detail}` : ''}`, {
    status,
    ...(retryAfter !== undefined && { retryAfterMs: retryAfter }),
  });
}

/** The body as JSON, or an UpstreamError saying what came back instead (HTML, malformed JSON). */
export function jsonBody(connector: string, response: TransportResponse): unknown {
  const type = header(response, 'content-type') ?? '';
  if (!/\bjson\b/i.test(type)) {
    throw new UpstreamError(connector, `${where(response)} answered ${type.split(';')[0] || 'no content type'}, not JSON`, {
      status: response.status,
      transient: false,
    });
  }
  try {
    return JSON.parse(response.text);
  } catch {
    throw new UpstreamError(connector, `${where(response)} answered malformed JSON`, { status: response.status, transient: false });
  }
}
