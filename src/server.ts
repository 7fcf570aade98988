import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  Kind,
  type OperationDefinitionNode,
  execute,
  type GraphQLFormattedError,
  type GraphQLSchema,
  getOperationAST,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  subscribe,
  GraphQLError,
  validate,
  type ValidationRule,
} from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { getDirective } from '@graphql-tools/utils';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type WebSocket as WsSocket, WebSocketServer } from 'ws';
import type Keyv from 'keyv';
import type { Connector, EventLog, HubContext, InboundResponse, StatusEvent, User } from '../connectors/runtime/contract.ts';
import { createCache } from './cache.ts';
import { ClientRateLimiter } from './client-rate-limit.ts';
import { PersistedOperations, withoutPersistedQuery } from './persisted-operations.ts';
import { createPubSub, type HubPubSub } from './pubsub.ts';
import { CONNECTOR_STATUS, type ConnectorStatusPayload } from './hub-api.ts';
import { Authenticator, type Credentials } from './auth.ts';
import type { HubConfig } from './config.ts';
import { ErrorCode, formatError, HubError } from './errors.ts';
import { createEventLog } from './events/index.ts';
import { closeSlowSocket, FanoutSubscriber, SubscriptionFanout } from './events/fanout.ts';
import { cursorOf, observeDeliveries } from './events/subscriptions.ts';
import { GRAPHIQL_ASSET_PATH, GRAPHIQL_CSP, graphiqlAsset, graphiqlPage } from './graphiql.ts';
import { CacheKeys } from './cache-keys.ts';
import { CachePolicy, type ResponsePlan } from './cache-policy.ts';
import { JitExecutor, jitGateway } from './jit-executor.ts';
import { type ResponseRequest, ResponseCache } from './response-cache.ts';
import { type ContextParts, requestContext } from './request-context.ts';
import { complexityRule, documentNesting, documentShapeRule, jsonNesting } from './limits.ts';
import { Metrics, type OperationType } from './metrics.ts';
import type { Secrets } from './secrets.ts';

const GRAPHQL_PATH = '/graphql';
/** Connectors with an inbound route receive `POST /webhooks/<name>` (SPEC §2). */
const INBOUND_PATH = '/webhooks/';

/** Where a hub is in its life; every request handler and `stop()` checks it. */
type HubState =
  | { phase: 'initialized' }
  | { phase: 'started'; url: string }
  | { phase: 'stopping'; done: Promise<void> }
  | { phase: 'stopped' };

export interface HubOptions {
  config: HubConfig;
  schema: GraphQLSchema;
  logger: Logger;
  secrets: Secrets;
  /**
   * What /metrics answers, given the hub's own registry; default that registry's text. A
   * `--workers` worker answers the sum over every worker (src/workers.ts).
   */
  metricsText?: (registry: Registry) => () => Promise<string>;
}

/**
 * One hub process: the HTTP server (GraphQL, GraphiQL, health, metrics) and the graphql-ws
 * WebSocket server on the same port, around one Apollo Server.
 */
export class Hub {
  readonly metrics = new Metrics();
  /**
   * The hub's pub/sub (`pubsub`: memory, Redis or PostgreSQL), shared with every connector as
   * `deps.pubsub` and every resolver as `context.pubsub`; connected by `start()`, closed by `stop()`.
   */
  readonly pubsub: HubPubSub;
  /**
   * The durable event log (`eventLog`), shared with every connector as `deps.eventLog`. Opened on
   * first use; closed by `stop()` after the connectors.
   */
  readonly eventLog: EventLog;
  readonly #config: HubConfig;
  readonly #logger: Logger;
  readonly #secrets: Secrets;
  readonly #schema: GraphQLSchema;
  readonly #connectors: Record<string, Connector>;
  readonly #cache: Keyv;
  readonly #authenticator: Authenticator | undefined;
  readonly #rateLimiter: ClientRateLimiter | undefined;
  readonly #persisted: PersistedOperations | undefined;
  /** Validation over WebSocket: what Apollo Server applies over HTTP, so both answer alike. */
  readonly #wsValidationRules: ValidationRule[];
  /** Parsed and validated WebSocket documents by query text; validation depends on nothing else. */
  readonly #wsDocuments = new Map<string, DocumentNode>();
  readonly #http: Server;
  readonly #ws: WebSocketServer;
  /** Open WebSockets by remote address (`server.ws.maxConnectionsPerIp`). */
  readonly #wsPerIp = new Map<string, number>();
  /** Event log subscriptions shared by identical subscribers (src/events/fanout.ts). */
  readonly #fanout: SubscriptionFanout;
  /**
   * Subscription fields fed by the event log, by name: the source a `@subscribe` field names, or
   * null for `events`, whose `source` argument names it.
   */
  readonly #eventFields = new Map<string, string | null>();
  /** Ids of parsed documents, for the fan-out's keys. */
  readonly #documentIds = new WeakMap<DocumentNode, number>();
  /** `server.responseCache`: whole responses of cacheable queries; undefined when off. */
  readonly #responses: ResponseCache | undefined;
  readonly #cachePolicy: CachePolicy;
  readonly #cacheKeys: CacheKeys;
  /** What every request's context shares (src/request-context.ts). */
  readonly #contextParts: ContextParts;
  /** HTTP requests whose response may be stored, with the plan to store it by (set by the plugin). */
  readonly #storable = new WeakMap<object, { plan: ResponsePlan; operationName: string | null }>();
  readonly #apollo: ApolloServer<HubContext>;
  readonly #metricsText: () => Promise<string>;
  #state: HubState = { phase: 'initialized' };

  constructor(options: HubOptions) {
    this.#config = options.config;
    this.#logger = options.logger;
    this.#secrets = options.secrets;
    this.#metricsText = options.metricsText?.(this.metrics.registry) ?? (() => this.metrics.registry.metrics());
    this.#schema = options.schema;
    this.#cache = createCache(options.config.cache.store);
    this.#cache.on('error', (error: unknown) => this.#logger.warn({ err: error }, 'cache store error (served as a miss)'));
    const cacheKeys = new CacheKeys(this.#cache);
    this.#cacheKeys = cacheKeys;
    this.eventLog = createEventLog(options.config.eventLog, options.config.baseDir);
    observeDeliveries(this.eventLog, (source, seconds) => this.metrics.eventDelivered(source, seconds));
    this.pubsub = createPubSub(options.config.pubsub, this.#logger);
    this.#connectors = options.config.registry.createConnectors(options.config.connectors, (name) => ({
        logger: this.#logger.child({ connector: name }),
        // What a connector caches, @invalidates can drop (src/cache-keys.ts).
        cache: cacheKeys.view(() => name),
        metrics: this.metrics.connector(name),
        pubsub: this.pubsub,
        eventLog: this.eventLog,
        onStatus: (event) => this.#publishStatus(name, event),
        scrub: (text) => this.#secrets.scrub(text),
        baseDir: options.config.baseDir,
      }));
    this.#contextParts = {
      connectors: this.#connectors,
      pubsub: this.pubsub,
      eventLog: this.eventLog,
      // The keyv store as resolvers see it (`context.cache`): a code resolver's @cache keys are
      // `field:<Type.field>:<hash>` (src/bindings.ts), which @invalidates can drop.
      cache: cacheKeys.view((key) => (key.startsWith('field:') ? key.slice(0, key.indexOf(':', 6)) : undefined)),
      logger: this.#logger,
    };
    this.#authenticator = options.config.auth ? new Authenticator(options.config.auth) : undefined;
    this.#rateLimiter = options.config.server.rateLimit ? new ClientRateLimiter(options.config.server.rateLimit, this.#logger) : undefined;
    const persisted = options.config.server.persistedOperations;
    this.#persisted = persisted ? new PersistedOperations(persisted.manifest, persisted.mode) : undefined;
    const server = options.config.server;
    this.#cachePolicy = new CachePolicy(this.#schema, {
      bindingDirectives: options.config.registry.directives.map((d) => d.directive.name),
      connectors: options.config.connectors,
    });
    this.#responses = server.responseCache.enabled ? new ResponseCache(server.responseCache.maxBytes) : undefined;
    const validationRules = [documentShapeRule(server.limits), complexityRule(server.limits)];
    this.#wsValidationRules = [
      ...specifiedRules,
      ...validationRules,
      // Over HTTP, Apollo Server adds this rule itself from its `introspection` option.
      ...(server.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
    ];

    // Slow clients: headers and whole requests must arrive in time (Node answers 408 and closes);
    // the check runs often enough for the timeouts to mean what they say.
    const { headersMs, requestMs } = server.timeouts;
    const httpOptions = {
      headersTimeout: Math.min(headersMs, requestMs),
      requestTimeout: requestMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersMs / 4))),
    };
    this.#http = createServer(httpOptions, (req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        this.#logger.error({ err: error }, 'request failed');
        if (!res.headersSent) sendJson(res, 500, graphqlErrorBody('Internal server error', ErrorCode.INTERNAL_SERVER_ERROR));
        else res.destroy();
      });
    });
    // noServer: upgrades are routed below, so the HTTP server's own errors (a port in use) stay
    // its own instead of being re-emitted on the WebSocket server.
    this.#ws = new WebSocketServer({ noServer: true, maxPayload: server.limits.bodyBytes });
    this.#http.on('upgrade', (req, socket, head) => {
      if (new URL(req.url ?? '/', 'http://hub.invalid').pathname !== GRAPHQL_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      // Connections per IP address: refused before the upgrade, with a status the client can read.
      const ip = req.socket.remoteAddress ?? 'unknown';
      const open = this.#wsPerIp.get(ip) ?? 0;
      const max = server.ws.maxConnectionsPerIp;
      if (open >= max) {
        const body = JSON.stringify({ error: `too many WebSocket connections from this address (limit ${max})` });
        socket.end(`HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        return;
      }
      this.#ws.handleUpgrade(req, socket, head, (ws) => {
        this.#wsPerIp.set(ip, (this.#wsPerIp.get(ip) ?? 0) + 1);
        ws.once('close', () => {
          const left = (this.#wsPerIp.get(ip) ?? 1) - 1;
          if (left > 0) this.#wsPerIp.set(ip, left);
          else this.#wsPerIp.delete(ip);
        });
        this.#ws.emit('connection', ws, req);
      });
    });
    this.#fanout = new SubscriptionFanout({
      maxBufferedBytes: MAX_WS_BUFFERED_BYTES,
      serialize: (result, context) => JSON.stringify(this.#nextPayload(result, context as HubContext)),
      onOverflow: (socket) => this.#overflow(socket as WsSocket),
      registry: this.metrics.registry,
    });
    for (const [name, field] of Object.entries(this.#schema.getSubscriptionType()?.getFields() ?? {})) {
      const use = getDirective(this.#schema, field, 'subscribe')?.[0] as { source?: string } | undefined;
      if (use?.source) this.#eventFields.set(name, use.source);
      else if (name === 'events' && field.args.some((a) => a.name === 'source')) this.#eventFields.set(name, null);
    }
    const wsServer = this.#useGraphqlWs();

    // Apollo Server runs a custom executor only as a gateway, which then supplies the schema too.
    const execution = server.execution === 'jit'
      ? { gateway: jitGateway(this.#schema, new JitExecutor(this.#schema, MAX_COMPILED_QUERIES, (field) => PLAIN_DATA_DIRECTIVES.some((d) => getDirective(this.#schema, field, d)))) }
      : { schema: this.#schema };
    this.#apollo = new ApolloServer<HubContext>({
      ...execution,
      introspection: server.introspection,
      validationRules,
      parseOptions: { maxTokens: server.limits.tokens },
      hideSchemaDetailsFromClientErrors: !server.suggestions,
      // With a manifest, ids are resolved before Apollo sees the request (#persistedDocument), and
      // Apollo's automatic persisted queries (which let any client register a document) are off.
      ...(this.#persisted && { persistedQueries: false as const }),
      // Incoming auth is a bearer token in a header, never a cookie, so a cross-site form or
      // <img> cannot act as the user; GET queries stay usable from curl. See README.
      csrfPrevention: false,
      includeStacktraceInErrorResponses: false,
      // The CLI owns SIGTERM/SIGINT and calls stop(); Apollo's own handler would race it.
      stopOnTerminationSignals: false,
      formatError: (formatted, error) => this.#formatError(formatted, error),
      logger: this.#logger,
      plugins: [
        // GraphiQL is the hub's own page; Apollo's landing page would load from a CDN.
        ApolloServerPluginLandingPageDisabled(),
        // The hub has no @cacheControl hints (its cache is @cache, inside the hub): Apollo's
        // cache-control plugin would wrap every field resolver to collect them and then answer
        // `cache-control: no-store` anyway, which #graphql sets itself.
        ApolloServerPluginCacheControlDisabled(),
        ApolloServerPluginDrainHttpServer({ httpServer: this.#http, stopGracePeriodMillis: server.shutdownTimeoutMs }),
        { async serverWillStart() { return { async drainServer() { await wsServer.dispose(); } }; } },
        this.metrics.apolloPlugin(),
        {
          async requestDidStart() {
            return {
              async willSendResponse({ contextValue, response }) {
                if (contextValue.stale.length > 0 && response.body.kind === 'single') {
                  response.body.singleResult.extensions = { ...response.body.singleResult.extensions, stale: contextValue.stale };
                }
              },
            };
          },
        },
        this.#cachePlugin(this.#responses),
      ],
    });
  }

  /** The URL GraphQL is served at, once started. */
  get url(): string {
    if (this.#state.phase !== 'started') throw new Error(`hub is ${this.#state.phase}, not started`);
    return this.#state.url;
  }

  async start(port = this.#config.server.port): Promise<string> {
    if (this.#state.phase !== 'initialized') throw new Error(`hub is ${this.#state.phase}; start() runs once`);
    try {
      await Promise.all([...Object.values(this.#connectors).map((c) => c.start()), this.#rateLimiter?.start(), this.pubsub.start()]);
      await this.#apollo.start();
      await new Promise<void>((resolve, reject) => {
        this.#http.once('error', reject);
        this.#http.listen(port, this.#config.server.host, () => {
          this.#http.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      // Whatever did start (connectors, Apollo) is closed again before the error goes up.
      await Promise.allSettled([this.#apollo.stop(), ...Object.values(this.#connectors).map((c) => c.close())]);
      await this.#closeEventLog();
      await this.pubsub.close().catch(() => undefined);
      this.#state = { phase: 'stopped' };
      throw error;
    }
    const address = this.#http.address() as AddressInfo;
    const host = address.family === 'IPv6' ? (address.address === '::' ? 'localhost' : `[${address.address}]`) : address.address === '0.0.0.0' ? 'localhost' : address.address;
    const url = `http://${host}:${address.port}${GRAPHQL_PATH}`;
    this.#state = { phase: 'started', url };
    return url;
  }

  /**
   * Drains: stops accepting connections, lets in-flight requests finish (up to
   * `server.shutdownTimeoutMs`), closes WebSockets with 1001, then closes the connectors.
   */
  stop(): Promise<void> {
    switch (this.#state.phase) {
      case 'initialized':
        this.#state = { phase: 'stopped' };
        return Promise.all([this.#closeEventLog(), this.pubsub.close().catch(() => undefined)]).then(() => undefined);
      case 'started': {
        const done = (async () => {
          await this.#apollo.stop();
          await Promise.allSettled(Object.values(this.#connectors).map((c) => c.close()));
          // After the connectors: a consumer settling its last messages still appends.
          await this.#closeEventLog();
          await this.#cache.disconnect().catch(() => undefined);
          await this.#rateLimiter?.close().catch(() => undefined);
          // After the connectors, whose last status changes are published.
          await this.pubsub.close().catch(() => undefined);
          this.#state = { phase: 'stopped' };
        })();
        this.#state = { phase: 'stopping', done };
        return done;
      }
      case 'stopping':
        return this.#state.done;
      case 'stopped':
        return Promise.resolve();
      default:
        throw new Error(`unreachable hub state: ${JSON.stringify(this.#state satisfies never)}`);
    }
  }

  async #closeEventLog(): Promise<void> {
    await this.eventLog.close().catch((error: unknown) => this.#logger.warn({ err: error }, 'closing the event log failed'));
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://hub.invalid');
    if (this.#cors(req, res)) return;

    if (url.pathname === GRAPHQL_PATH) {
      if (req.method === 'GET' && !url.searchParams.has('query') && acceptsHtml(req)) {
        if (!this.#config.server.graphiql) return sendJson(res, 404, { error: 'GraphiQL is disabled (server.graphiql)' });
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': GRAPHIQL_CSP });
        res.end(graphiqlPage(GRAPHQL_PATH));
        return;
      }
      return this.#graphql(req, res, url);
    }
    if (url.pathname.startsWith(INBOUND_PATH)) return this.#inbound(req, res, url);
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (url.pathname === '/readyz') return this.#readyz(res);
    if (url.pathname === '/metrics') {
      const text = this.#secrets.scrub(await this.#metricsText());
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (url.pathname.startsWith(GRAPHIQL_ASSET_PATH) && this.#config.server.graphiql) {
      const asset = graphiqlAsset(url.pathname.slice(GRAPHIQL_ASSET_PATH.length));
      if (asset) {
        res.writeHead(200, { 'content-type': `${asset.type}; charset=utf-8`, 'cache-control': 'public, max-age=3600' });
        res.end(asset.body);
        return;
      }
    }
    sendJson(res, 404, { error: 'not found' });
  }

  /** Answers a preflight and sets CORS headers for allowed origins; true when it answered. */
  #cors(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    const { origins, credentials } = this.#config.server.cors;
    if (!origin || !(origins.includes('*') || origins.includes(origin))) return false;
    res.setHeader('access-control-allow-origin', origins.includes('*') && !credentials ? '*' : origin);
    res.setHeader('vary', 'Origin');
    if (credentials) res.setHeader('access-control-allow-credentials', 'true');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type, authorization',
        'access-control-max-age': '600',
      });
      res.end();
      return true;
    }
    return false;
  }

  async #readyz(res: ServerResponse): Promise<void> {
    const connectors = Object.values(this.#connectors).map((c) => {
      const { name, type, required, healthy, lastError } = c.status();
      return { name, type, required, healthy, lastError };
    });
    const ready = this.#state.phase === 'started' && connectors.every((c) => c.healthy || !c.required);
    sendJson(res, ready ? 200 : 503, {
      status: ready ? 'ready' : this.#state.phase === 'started' ? 'not ready' : this.#state.phase,
      connectors,
    });
  }

  /** `POST /webhooks/<connector>[/…]`: the raw body, within the connector's limit, to its route. */
  async #inbound(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const [name = '', ...rest] = url.pathname.slice(INBOUND_PATH.length).split('/');
    const connector = Object.hasOwn(this.#connectors, name) ? this.#connectors[name] : undefined;
    const route = connector?.inbound;
    if (!route) return sendJson(res, 404, { error: `no connector named "${name}" receives webhooks here` });
    if (this.#state.phase !== 'started') return sendJson(res, 503, { error: 'the hub is shutting down' }, { 'retry-after': '1' });
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed; send POST' }, { allow: 'POST' });
    const body = await readBody(req, route.maxBodyBytes);
    if (body === undefined) return sendJson(res, 413, { error: `body over the limit of ${route.maxBodyBytes} bytes` }, { connection: 'close' });
    const inboundUrl = new URL(`/${rest.join('/')}${url.search}`, url);
    let answer: InboundResponse;
    try {
      answer = await route.handle({ method: req.method, url: inboundUrl, headers: req.headers, body });
    } catch (error) {
      this.#logger.error({ err: error, connector: name }, 'inbound route failed');
      return sendJson(res, 500, { error: 'internal error' });
    }
    if (answer.body === undefined) {
      res.writeHead(answer.status, answer.headers ?? {});
      res.end();
    } else {
      sendJson(res, answer.status, answer.body, answer.headers);
    }
  }

  async #graphql(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const limit = this.#config.server.limits.bodyBytes;
    const text = (await readBody(req, limit))?.toString('utf8');
    if (text === undefined) {
      return sendJson(res, 413, graphqlErrorBody(`Request body is over the limit of ${limit} bytes`, ErrorCode.BAD_REQUEST), { connection: 'close' });
    }
    let body: unknown = text;
    const json = isJson(req.headers['content-type']) && text !== '';
    const max = this.#config.server.limits.nesting;
    if (json && documentNesting(text, max) > max) {
      return sendJson(res, 400, graphqlErrorBody(`Request body is nested deeper than the limit of ${max}`, ErrorCode.BAD_REQUEST));
    }
    if (json) {
      try {
        body = JSON.parse(text);
      } catch {
        return sendJson(res, 400, graphqlErrorBody('Request body is not valid JSON', ErrorCode.BAD_REQUEST));
      }
    }
    // graphql-js parses recursively: a document (or GET variables) nested thousands deep would
    // overflow its stack, so the nesting is measured on the text first.
    const query = (body as { query?: unknown } | null)?.query;
    const texts = [typeof query === 'string' ? query : undefined, ...['query', 'variables', 'extensions'].map((k) => url.searchParams.get(k) ?? undefined)];
    const nesting = Math.max(0, ...texts.map((t) => (t ? documentNesting(t, max) : 0)));
    if (nesting > max) {
      return sendJson(res, 400, graphqlErrorBody(`Query too complex: nesting ${nesting} is over the limit of ${max}`, ErrorCode.QUERY_TOO_COMPLEX));
    }

    let user: User | null;
    try {
      const apiKey = req.headers['x-api-key'];
      user = await this.#authenticate({ authorization: req.headers.authorization, apiKey: Array.isArray(apiKey) ? apiKey[0] : apiKey });
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      return sendJson(res, 401, { errors: [this.#formatError({ message: error.message, extensions: error.extensions }, error)] }, {
        'www-authenticate': 'Bearer',
      });
    }

    const limited = await this.#rateLimit(user, req.socket.remoteAddress);
    if (limited) {
      const retryAfter = String(Math.max(1, Math.ceil((limited.extensions.retryAfterMs as number) / 1000)));
      return sendJson(res, 429, { errors: [this.#formatError({ message: limited.message, extensions: limited.extensions }, limited)] }, { 'retry-after': retryAfter });
    }

    if (this.#persisted) {
      const outcome = this.#persistedDocument(url, body);
      if (outcome instanceof HubError) {
        const notFound = outcome.extensions.code === ErrorCode.PERSISTED_QUERY_NOT_FOUND;
        // Not found is 200, as Apollo answers it: clients then send the whole document.
        return sendJson(res, notFound ? 200 : 403, { errors: [this.#formatError({ message: outcome.message, extensions: outcome.extensions }, outcome)] }, {
          'cache-control': 'private, no-cache, must-revalidate',
        });
      }
      body = outcome;
    }

    // A cached response is answered before Apollo Server parses anything (src/response-cache.ts).
    const responses = this.#responses;
    const cacheable = responses && req.method === 'POST' ? responseRequest(body) : undefined;
    const accept = req.headers.accept ?? '';
    const generation = responses?.generation ?? 0;
    if (cacheable) {
      const started = process.hrtime.bigint();
      const plan = responses!.plan(cacheable.query, cacheable.operationName);
      const hit = plan && responses!.get(responses!.keyOf(cacheable, plan, plan.perCaller ? callerOf(user) : '', accept));
      if (hit) {
        for (const [key, value] of hit.headers) res.setHeader(key, value);
        res.setHeader('cache-control', 'no-store');
        res.end(hit.body);
        this.metrics.observe('query', hit.operationName, Number(process.hrtime.bigint() - started) / 1e9, true);
        return;
      }
    }

    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const httpGraphQLRequest = { method: req.method ?? 'GET', headers, search: url.search, body };
    const response = await this.#apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest,
      context: async () => this.#context(user, req.headers['x-request-id']),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    if (!response.headers.has('cache-control')) res.setHeader('cache-control', 'no-store');
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      const store = cacheable && this.#storable.get(httpGraphQLRequest);
      if (store) {
        const key = responses!.keyOf(cacheable, store.plan, store.plan.perCaller ? callerOf(user) : '', accept);
        responses!.set(key, store.plan, { body: response.body.string, headers: [...response.headers], operationName: store.operationName }, generation);
      }
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  }

  /**
   * A mutation's `@invalidates`: drops the cached whole responses and the connector and `@cache`
   * values it names, before its response is sent. `server.responseCache`: learns each query's
   * plan (src/cache-policy.ts) and marks the HTTP requests whose response may be stored (a query
   * with a plan, answered 200 without errors or stale fields); #graphql stores the serialized body.
   */
  #cachePlugin(responses: ResponseCache | undefined): ApolloServerPlugin<HubContext> {
    const policy = this.#cachePolicy;
    const storable = this.#storable;
    const invalidate = (document: DocumentNode, operationName: string | null | undefined) => this.#invalidate(document, operationName);
    return {
      async requestDidStart() {
        return {
          async willSendResponse({ document, operation, operationName, request, response, source, errors, contextValue }) {
            if (!document || !operation) return;
            // Whether or not it succeeded: a failed mutation may still have changed something.
            if (operation.operation === 'mutation') return invalidate(document, request.operationName);
            if (!responses || operation.operation !== 'query' || source === undefined) return;
            const plan = policy.planOf(document, request.operationName);
            responses.learn(source, request.operationName, plan);
            const body = response.body;
            const ok = body.kind === 'single' && !body.singleResult.errors?.length && !errors?.length;
            if (plan && ok && request.http && contextValue.stale.length === 0 && (response.http.status ?? 200) === 200) {
              storable.set(request.http, { plan, operationName: operationName ?? null });
            }
          },
        };
      },
    };
  }

  /** What a mutation's root fields name with `@invalidates`: cached responses, then cached values. */
  async #invalidate(document: DocumentNode, operationName: string | null | undefined): Promise<void> {
    const names = this.#cachePolicy.invalidatedBy(document, operationName);
    if (names.length === 0) return;
    this.#responses?.invalidate(names);
    await this.#cacheKeys.drop(this.#cachePolicy.ownersOf(names));
  }

  /**
   * `server.persistedOperations` over HTTP: puts the listed document an id names in place of the
   * id (in the body, or in the GET parameters of `url`), or answers why the request may not run.
   */
  #persistedDocument(url: URL, body: unknown): unknown {
    if (url.searchParams.has('query') || url.searchParams.has('extensions')) {
      let extensions: unknown;
      try {
        extensions = JSON.parse(url.searchParams.get('extensions') ?? 'null');
      } catch {
        return body; // Apollo answers the malformed parameter
      }
      const outcome = this.#persisted!.resolve({ query: url.searchParams.get('query') ?? undefined, extensions });
      if (!outcome || outcome instanceof HubError) return outcome ?? body;
      url.searchParams.set('query', outcome.query);
      const rest = withoutPersistedQuery(extensions);
      if (rest) url.searchParams.set('extensions', JSON.stringify(rest));
      else url.searchParams.delete('extensions');
      return body;
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
    const request = body as { query?: unknown; extensions?: unknown };
    const outcome = this.#persisted!.resolve(request);
    if (!outcome || outcome instanceof HubError) return outcome ?? body;
    const { extensions: _extensions, ...rest } = request;
    const extensions = withoutPersistedQuery(request.extensions);
    return { ...rest, query: outcome.query, ...(extensions && { extensions }) };
  }

  /** The RATE_LIMITED error when this caller's bucket (`server.rateLimit`) is empty. */
  async #rateLimit(user: User | null, ip: string | undefined): Promise<HubError | undefined> {
    if (!this.#rateLimiter) return undefined;
    const { allowed, retryAfterMs } = await this.#rateLimiter.take(user, ip);
    if (allowed) return undefined;
    const { rps, burst } = this.#rateLimiter;
    return new HubError(ErrorCode.RATE_LIMITED, `Rate limit exceeded: ${rps} requests per second (burst ${burst}); retry in ${retryAfterMs} ms`, { retryAfterMs });
  }

  #authenticate(credentials: Credentials): Promise<User | null> {
    return this.#authenticator ? this.#authenticator.authenticate(credentials) : Promise.resolve(null);
  }

  #context(user: User | null, requestId?: string | string[]): HubContext {
    return requestContext(this.#contextParts, user, requestId);
  }

  #publishStatus(name: string, event: StatusEvent): void {
    const connector = this.#connectors[name];
    if (!connector) return;
    const payload: ConnectorStatusPayload = {
      connectorStatus: { event, at: new Date().toISOString(), connector: connector.status() },
    };
    // A shared pub/sub that is down (or closed) fails the publish: logged, never thrown.
    this.pubsub.publish(CONNECTOR_STATUS, payload).catch((error: unknown) => this.#logger.debug({ err: error }, 'connector status not published'));
  }

  #formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
    // Without suggestions, a validation or coercion error names no field, type or value the
    // client did not write itself (graphql-js adds "Did you mean …?" from the schema).
    if (!this.#config.server.suggestions) formatted = { ...formatted, message: withoutSuggestions(formatted.message) };
    return formatError(formatted, error, {
      scrub: (text) => this.#secrets.scrub(text),
      onMasked: (err) => this.#logger.error({ err: unwrap(err) }, 'internal error (masked in the response)'),
    });
  }

  // ---- WebSocket ----------------------------------------------------------------------------

  #executionArgs(document: DocumentNode, payload: SubscribePayload): ExecutionArgs {
    return { schema: this.#schema, document, variableValues: payload.variables, operationName: payload.operationName };
  }

  /** A `next` frame's payload: errors formatted; the event's cursor and stale fields in extensions. */
  #nextPayload(result: ExecutionResult, context: HubContext): ExecutionResult | Record<string, unknown> {
    const stale = context.stale;
    const cursor = cursorOf(context);
    const extensions = {
      ...result.extensions,
      ...(cursor !== undefined && { cursor }),
      ...(stale.length > 0 && { stale }),
    };
    return {
      ...result,
      ...(result.errors && { errors: result.errors.map((e) => this.#formatError(e.toJSON(), e)) }),
      ...(Object.keys(extensions).length > 0 && { extensions }),
    };
  }

  /** A connection over MAX_WS_BUFFERED_BYTES of unsent frames is closed with 4413. */
  #overflow(socket: WsSocket): void {
    if (socket.readyState !== socket.OPEN) return;
    this.#logger.warn({ bufferedBytes: socket.bufferedAmount, limit: MAX_WS_BUFFERED_BYTES }, 'WebSocket too slow: closed with 4413');
    closeSlowSocket(socket);
  }

  /**
   * What makes a subscription shareable (fan-out dedupe): its one root field is fed by the event
   * log; subscribers with the same document, operation, variables and auth scope (user id and
   * roles, or anonymous) then share one execution. Undefined for any other operation.
   */
  #sharedKey(args: ExecutionArgs): { key: string; source: string; replaying: boolean } | undefined {
    const op = getOperationAST(args.document, args.operationName) as OperationDefinitionNode | null;
    const [root, ...more] = op?.operation === 'subscription' ? op.selectionSet.selections : [];
    if (!root || more.length > 0 || root.kind !== Kind.FIELD || !this.#eventFields.has(root.name.value)) return undefined;
    const variables = (args.variableValues ?? {}) as Record<string, unknown>;
    const argument = (field: FieldNode, name: string): unknown => {
      const value = field.arguments?.find((a) => a.name.value === name)?.value;
      if (!value) return undefined;
      if (value.kind === Kind.VARIABLE) return variables[value.name.value];
      return value.kind === Kind.STRING || value.kind === Kind.INT ? value.value : value.kind === Kind.NULL ? null : undefined;
    };
    const source = this.#eventFields.get(root.name.value) ?? argument(root, 'source');
    let id = this.#documentIds.get(args.document);
    if (id === undefined) this.#documentIds.set(args.document, (id = nextDocumentId++));
    const user = (args.contextValue as HubContext).user;
    const scope = user ? [user.id, [...user.roles].sort()] : null;
    return {
      key: JSON.stringify([id, args.operationName ?? null, args.variableValues ?? null, scope]),
      source: typeof source === 'string' ? source : 'unknown',
      replaying: argument(root, 'after') != null,
    };
  }

  #useGraphqlWs() {
    type Extra = { user?: User | null };
    const format = (errors: readonly GraphQLError[]) => errors.map((e) => this.#formatError(e.toJSON(), e));
    return useServer<Record<string, unknown> | undefined, Extra>(
      {
        schema: this.#schema,
        context: (ctx) => this.#context(ctx.extra.user ?? null),
        onConnect: async (ctx) => {
          const params = ctx.connectionParams ?? {};
          const authorization = params.authorization ?? params.Authorization;
          const apiKey = params.apiKey;
          try {
            ctx.extra.user = await this.#authenticate({
              authorization: typeof authorization === 'string' ? authorization : undefined,
              apiKey: typeof apiKey === 'string' ? apiKey : undefined,
            });
            return true;
          } catch (error) {
            if (!(error instanceof HubError)) throw error;
            return false; // graphql-ws closes with 4403 Forbidden
          }
        },
        onSubscribe: async (ctx, _id, payload) => {
          // graphql-ws has already registered this operation's id.
          const max = this.#config.server.ws.maxSubscriptionsPerConnection;
          if (Object.keys(ctx.subscriptions).length > max) {
            return [new HubError(ErrorCode.RATE_LIMITED, `Too many operations on this connection (limit ${max}); complete one first`, { limit: max })];
          }
          // Each operation draws from the caller's bucket, as each HTTP request does.
          const limited = await this.#rateLimit(ctx.extra.user ?? null, ctx.extra.request.socket.remoteAddress);
          if (limited) return [limited];
          if (this.#persisted) {
            // graphql-ws requires a string `query`: a client sending an id sends "" with it.
            const outcome = this.#persisted.resolve(payload);
            if (outcome instanceof HubError) return [outcome];
            if (outcome) payload = { ...payload, query: outcome.query };
          }
          // As over HTTP: variables (and, uncached, the document) nested too deep are refused
          // before anything recursive sees them.
          const limits = this.#config.server.limits;
          const variables = jsonNesting(payload.variables, limits.nesting);
          if (variables > limits.nesting) {
            return [new HubError(ErrorCode.BAD_REQUEST, `Variables are nested deeper than the limit of ${limits.nesting}`)];
          }
          let document = this.#wsDocuments.get(payload.query);
          if (document) return this.#executionArgs(document, payload);
          const nesting = documentNesting(payload.query, limits.nesting);
          if (nesting > limits.nesting) {
            return [new HubError(ErrorCode.QUERY_TOO_COMPLEX, `Query too complex: nesting ${nesting} is over the limit of ${limits.nesting}`)];
          }
          try {
            document = parse(payload.query, { maxTokens: limits.tokens });
          } catch (error) {
            if (!(error instanceof GraphQLError)) throw error;
            return [new GraphQLError(error.message, {
              source: error.source, positions: error.positions, originalError: error,
              extensions: { code: ErrorCode.GRAPHQL_PARSE_FAILED },
            })];
          }
          const errors = validate(this.#schema, document, this.#wsValidationRules, { hideSuggestions: !this.#config.server.suggestions });
          if (errors.length > 0) {
            // Same codes as over HTTP: GRAPHQL_VALIDATION_FAILED, or the rule's own code.
            return errors.map((e) => new GraphQLError(e.message, {
              nodes: e.nodes, originalError: e, extensions: { code: ErrorCode.GRAPHQL_VALIDATION_FAILED },
            }));
          }
          // Valid documents are kept: many clients send the same subscription, and each would
          // otherwise hold its own parsed copy for as long as it stays subscribed.
          if (this.#wsDocuments.size >= MAX_CACHED_DOCUMENTS) this.#wsDocuments.delete(this.#wsDocuments.keys().next().value!);
          this.#wsDocuments.set(payload.query, document);
          return this.#executionArgs(document, payload);
        },
        execute: async (args) => {
          const started = process.hrtime.bigint();
          const result = await execute(args);
          const op = getOperationAST(args.document, args.operationName);
          // As over HTTP: a mutation drops the cached responses its `@invalidates` names.
          if (op?.operation === 'mutation') await this.#invalidate(args.document, args.operationName);
          const ok = !('errors' in result && result.errors?.length);
          this.metrics.observe((op?.operation ?? 'unknown') as OperationType, op?.name?.value, Number(process.hrtime.bigint() - started) / 1e9, ok);
          return result;
        },
        subscribe: async (args) => {
          const op = getOperationAST(args.document, args.operationName);
          // Event log subscriptions: identical subscribers share one execution (fan-out dedupe).
          const shared = this.#sharedKey(args);
          const result = shared
            ? await this.#fanout.join(shared.key, { source: shared.source, replaying: shared.replaying, context: args.contextValue }, () => subscribe(args))
            : await subscribe(args);
          this.metrics.observe('subscription', op?.name?.value, 0, !('errors' in result && result.errors?.length));
          return result;
        },
        onOperation: (ctx, id, _payload, _args, result) => {
          // A shared subscription's frames go to the socket directly, around one serialized payload.
          if (result instanceof FanoutSubscriber) result.attach(ctx.extra.socket, id);
          return undefined;
        },
        onNext: (ctx, _id, _payload, args, result) => {
          // graphql-ws sends one frame per operation at a time, waiting for each to be written;
          // the limit holds here too, for connections with many operations or large frames.
          if (ctx.extra.socket.bufferedAmount > MAX_WS_BUFFERED_BYTES) this.#overflow(ctx.extra.socket);
          return this.#nextPayload(result, args.contextValue as HubContext) as typeof result;
        },
        // Errors from onSubscribe (parse, validation) pass through here to the client.
        onError: (_ctx, _id, _payload, errors) => format(errors),
        connectionInitWaitTimeout: this.#config.server.ws.connectionInitTimeoutMs,
      },
      this.#ws,
      this.#config.server.ws.keepAliveMs,
    );
  }
}

/** Validated WebSocket documents kept by query text (oldest dropped first). */
const MAX_CACHED_DOCUMENTS = 1000;
/** Compiled queries kept (`server.execution: jit`), least recently used dropped first. */
const MAX_COMPILED_QUERIES = 1000;
/** Binding directives whose fields answer plain data (parsed JSON, rows): jit may read their properties. */
const PLAIN_DATA_DIRECTIVES = ['http', 'sql'];

/**
 * Unsent bytes one WebSocket may have queued in the hub (beyond what the OS buffers): a client
 * that reads slower than its subscriptions produce is closed with 4413 past it, so it can neither
 * hold back other subscribers of a shared execution nor grow the hub's memory without bound.
 */
export const MAX_WS_BUFFERED_BYTES = 4 * 1024 * 1024;
let nextDocumentId = 1;

function withoutSuggestions(message: string): string {
  return message.replace(/ ?Did you mean [^?]*\?$/, '');
}

function unwrap(error: unknown): unknown {
  const original = (error as GraphQLError | undefined)?.originalError;
  return original ?? error;
}

/** A POST body the response cache can key: a string `query`, and well-typed name and variables. */
function responseRequest(body: unknown): ResponseRequest | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const { query, operationName, variables } = body as Record<string, unknown>;
  if (typeof query !== 'string') return undefined;
  if (operationName != null && typeof operationName !== 'string') return undefined;
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) return undefined;
  return { query, operationName: operationName ?? undefined, variables: variables ?? undefined };
}

/** Who is asking, for a response that varies by caller: everything templates and @auth can read. */
function callerOf(user: User | null): string {
  return user ? JSON.stringify([user.id, user.roles, user.claims]) : '';
}

function acceptsHtml(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('text/html');
}

function isJson(contentType: string | undefined): boolean {
  return /^application\/(graphql-response\+)?json\b/i.test(contentType ?? '');
}

/**
 * The body's bytes, or undefined when it is over the limit. An oversized body is drained, not
 * kept, so the client still reads the 413.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > limit) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.resume();
      resolve(undefined);
    };
    req.on('data', onData);
    req.once('end', () => resolve(size <= limit ? Buffer.concat(chunks) : undefined));
    req.once('error', reject);
  });
}

function graphqlErrorBody(message: string, code: ErrorCode) {
  return { errors: [{ message, extensions: { code } }] };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}
