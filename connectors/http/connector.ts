import {
  BaseConnector,
  type ConnectorDeps,
  connectorConfig,
  displayUrl,
  HttpTransport,
  httpUrl,
  jsonBody,
  type Outcome,
  positiveInt,
  statusError,
  type TransportResponse,
  UpstreamError,
  z,
} from '../../src/index.ts';

export const httpConfigSchema = connectorConfig({
  /** Every path is resolved under this URL and can never leave it. */
  baseUrl: httpUrl(),
  /** Default 5 MiB. A larger response fails with UPSTREAM_ERROR. */
  maxResponseBytes: positiveInt().default(5 * 1024 * 1024),
  /** Default false. Redirects are answered as errors unless this is on. */
  followRedirects: z.boolean({ error: 'expected true or false' }).default(false),
  /** Default 64. Keep-alive connections per origin. */
  connections: positiveInt().default(64),
  /**
   * Default: any host. The only hosts this connector may call (\`api.example.com\`, \`*.example.com\`,
   * \`host:port\`), its own URL's host included; any other call, a redirect hop included, fails
   * with UPSTREAM_ERROR before it is made.
   */
  allowHosts: z.array(z.string({ error: 'expected a host name' }).min(1, { error: 'expected a host name' }), { error: 'expected a list of host names' }).optional(),
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
 * A REST/JSON API behind the pipeline: keep-alive pooling and outbound auth (HttpTransport),
 * paths confined to baseUrl, JSON responses only, redirects refused unless asked for.
 */
export class HttpConnector extends BaseConnector<HttpConfig> {
  readonly #transport: HttpTransport;
  readonly #base: URL;

  constructor(name: string, config: HttpConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.#base = new URL(config.baseUrl.endsWith('/') ? config.baseUrl : `${config.baseUrl}/`);
    this.#transport = new HttpTransport(name, config);
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
    const headers = call.headers ?? {};
    const idempotencyKey = Object.keys({ ...this.config.headers, ...headers }).some((h) => h.toLowerCase() === 'idempotency-key');
    return this.call({
      key: `${call.method} ${url.href} ${JSON.stringify(Object.entries(headers).sort())} ${this.#transport.identity}`,
      safe: call.method === 'GET',
      retryable: IDEMPOTENT.has(call.method) || idempotencyKey,
      ttlMs: call.ttlMs,
      staleIfOpen: call.staleIfOpen,
      attempt: async (signal) => this.#read(await this.#transport.send(call.method, url, headers, call.body, signal)),
    });
  }

  #read(response: TransportResponse): unknown {
    const { status } = response;
    if (status >= 300 && status < 400) {
      throw new UpstreamError(this.name, `${response.method} ${displayUrl(response.url)} answered ${status} (a redirect; set followRedirects to follow it)`, {
        status,
        transient: false,
      });
    }
    if (status >= 400) throw statusError(this.name, response, upstreamMessage(response.text));
    if (status === 204 || response.text === '') return null;
    return jsonBody(this.name, response);
  }

  protected async ping(signal: AbortSignal): Promise<void> {
    const url = this.url(this.config.healthPath ?? '/');
    const status = await this.#transport.probe(url, signal);
    const ok = this.config.healthPath ? status < 300 : status < 500;
    if (!ok) throw new Error(`GET ${displayUrl(url)} answered ${status}`);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#transport.close();
  }
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
  return typeof message === 'string' ? message.slice(0, 200) : '';
}
