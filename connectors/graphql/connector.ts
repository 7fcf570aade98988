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

export const graphqlConfigSchema = connectorConfig({
  /** The remote GraphQL endpoint, POSTed to (`https://api.example.com/graphql`). */
  url: httpUrl(),
  /** Default 5 MiB. A larger response fails with UPSTREAM_ERROR. */
  maxResponseBytes: positiveInt().default(5 * 1024 * 1024),
  /** Default 64. Keep-alive connections to the remote. */
  connections: positiveInt().default(64),
  /**
   * Default: any host. The only hosts this connector may call (\`api.example.com\`, \`*.example.com\`,
   * \`host:port\`), its own URL's host included; any other call, a redirect hop included, fails
   * with UPSTREAM_ERROR before it is made.
   */
  allowHosts: z.array(z.string({ error: 'expected a host name' }).min(1, { error: 'expected a host name' }), { error: 'expected a list of host names' }).optional(),
});
export type GraphqlConfig = z.output<typeof graphqlConfigSchema>;

/** One error of a GraphQL response (GraphQL spec §7.1.2), as the remote sent it. */
export interface RemoteError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

/** A GraphQL response as the remote sent it: `data` (possibly partial), `errors`, or both. */
export interface GraphqlResponse {
  data?: unknown;
  errors?: RemoteError[];
}

export interface GraphqlExecuteOptions {
  /** A query (true: cacheable, shared with identical calls in flight, retried) or a mutation (false). */
  safe: boolean;
  /** Overrides the connector's cache TTL (a field's `@cache`); queries only. */
  ttlMs?: number | undefined;
  staleIfOpen?: boolean | undefined;
}

/**
 * A remote GraphQL API behind the pipeline: `{ query, variables }` POSTed as JSON through the
 * shared HttpTransport (keep-alive, outbound auth with one refresh-and-retry on 401, a response
 * size limit). A response carrying `errors` is returned, not thrown: the caller decides what a
 * partial answer means. It is never cached or retried, and neither the breaker nor the
 * connector's status (`failures`, `lastError`) counts it as a failure.
 */
export class GraphqlConnector extends BaseConnector<GraphqlConfig> {
  readonly #transport: HttpTransport;
  readonly #url: URL;

  constructor(name: string, config: GraphqlConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.#url = new URL(config.url);
    this.#transport = new HttpTransport(name, { ...config, followRedirects: false });
  }

  /** Sends one operation through the pipeline; resolves with the remote's response. */
  async execute(query: string, variables: Record<string, unknown>, options: GraphqlExecuteOptions): Promise<Outcome<GraphqlResponse>> {
    const body = JSON.stringify({ query, variables });
    try {
      return await this.call({
        key: `POST ${this.#url.href} ${body} ${this.#transport.identity}`,
        safe: options.safe,
        retryable: options.safe,
        ttlMs: options.ttlMs,
        staleIfOpen: options.staleIfOpen,
        attempt: async (signal) => this.#read(await this.#post(body, signal)),
      });
    } catch (error) {
      // Thrown inside the pipeline only so that it is neither cached nor retried.
      if (error instanceof RemoteErrors) return { value: error.response, stale: false };
      throw error;
    }
  }

  #post(body: string, signal: AbortSignal): Promise<TransportResponse> {
    return this.#transport.send('POST', this.#url, { accept: ACCEPT }, body, signal);
  }

  #read(response: TransportResponse): GraphqlResponse {
    const { status } = response;
    if (status < 200 || status > 299) {
      // GraphQL over HTTP: a 4xx may carry `errors` (a document the remote refused).
      const json = parseJson(response.text);
      throw statusError(this.name, response, isResponse(json) ? remoteMessages(json.errors ?? []) : '');
    }
    const json = jsonBody(this.name, response);
    if (!isResponse(json)) {
      throw new UpstreamError(this.name, `${response.method} ${displayUrl(response.url)} answered JSON that is not a GraphQL response`, { status, transient: false });
    }
    if (json.errors && json.errors.length > 0) throw new RemoteErrors(this.name, json);
    return json;
  }

  /** `{ __typename }`: any GraphQL server answers it with data and no errors. */
  protected async ping(signal: AbortSignal): Promise<void> {
    const response = this.#read(await this.#post(JSON.stringify({ query: '{ __typename }' }), signal));
    if (typeof (response.data as { __typename?: unknown } | null)?.__typename !== 'string') {
      throw new Error(`POST ${displayUrl(this.#url)} answered without data.__typename`);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#transport.close();
  }
}

export function remoteMessages(errors: readonly RemoteError[]): string {
  return errors.map((e) => (e.message.length > 300 ? `${e.message.slice(0, 297)}...` : e.message)).join('; ');
}

const ACCEPT = 'application/graphql-response+json, application/json;q=0.9';

/**
 * A well-formed response with `errors`. The remote did answer, and whether that is a failure is
 * the caller's to judge (like a 4xx): not counted by the breaker nor in `failures` (metric
 * outcome `refused`), not retried, not cached.
 */
class RemoteErrors extends UpstreamError {
  override readonly countsAsFailure = false;
  constructor(
    connector: string,
    readonly response: GraphqlResponse,
  ) {
    super(connector, remoteMessages(response.errors ?? []), { transient: false });
  }
}

function isResponse(json: unknown): json is GraphqlResponse {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return false;
  const { data, errors } = json as Record<string, unknown>;
  if (errors !== undefined && !(Array.isArray(errors) && errors.every((e) => typeof (e as RemoteError | null)?.message === 'string'))) {
    return false;
  }
  return data !== undefined || errors !== undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
