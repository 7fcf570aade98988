/**
 * The connector pipeline (connectors/runtime/runtime.ts) as a user sees it: real `http`
 * connectors in real hubs against real upstream HTTP servers (test/upstream.ts). Every test
 * asserts what reaches the client (codes, messages, extensions), what reaches the upstream
 * (request counts, headers, timing) and what the management API, /readyz and /metrics show.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Client, createClient, type ExecutionResult } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CONNECTOR_STATUS } from '../src/hub-api.ts';
import { gql, startHub, type TestHub } from './helpers.ts';
import { type Handler, json, Upstream } from './upstream.ts';

const SDL = `
type Thing { id: ID! text: String! }
type Query {
  ok: String
  thing(id: ID!): Thing @http(connector: "api", path: "/things/{args.id}")
  cached(id: ID!): Thing @cache(ttlMs: 60000) @http(connector: "api", path: "/cached/{args.id}")
  quote: Thing @cache(ttlMs: 50, staleIfOpen: true) @http(connector: "api", path: "/quote")
}
type Mutation {
  placeOrder: Thing @http(connector: "api", method: POST, path: "/orders")
  placeOrderKeyed(key: String!): Thing
    @http(connector: "api", method: POST, path: "/orders", headers: [{key: "Idempotency-Key", value: "{args.key}"}])
}
`;
const RESOLVERS = "export default { Query: { ok: () => 'fine' } };";

// ---- helpers ------------------------------------------------------------------------------

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  // Last started, first stopped: clients, then hubs, then upstreams.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function upstreamOf(handler: Handler): Promise<Upstream> {
  const upstream = await new Upstream(handler).start();
  cleanups.push(() => upstream.stop());
  return upstream;
}

async function hubOf(api: Record<string, unknown>, config: Record<string, unknown> = {}): Promise<TestHub> {
  const h = await startHub(
    { 'schema/api.graphql': SDL, 'resolvers/ok.mjs': RESOLVERS },
    { ...config, connectors: { api: { type: 'http', ...api } } },
  );
  cleanups.push(() => h.stop());
  return h;
}

/** An upstream and a hub whose connector `api` points at it. Retries are off unless `api` says otherwise. */
async function setup(api: Record<string, unknown>, handler: Handler, config: Record<string, unknown> = {}) {
  const upstream = await upstreamOf(handler);
  const h = await hubOf({ baseUrl: upstream.url, retry: { attempts: 0 }, ...api }, config);
  return { upstream, h };
}

/** Answers every request with the item its path names: /things/7 → { id: "7", text: "thing 7" }. */
const things: Handler = (req, res) => {
  const id = req.url.split('?')[0]!.split('/').pop()!;
  json(res, 200, { id, text: `thing ${id}` });
};

const never: Handler = () => {};

/** The value of one series in /metrics (`name{labels}` exactly as exposed), undefined when absent. */
async function metric(h: TestHub, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${h.origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface Status {
  healthy: boolean;
  breaker: { state: string };
  requests: number;
  failures: number;
  lastError: string | null;
  cache: { hits: number; misses: number } | null;
}

async function status(h: TestHub): Promise<Status> {
  const r = await gql(h.url, '{ hub { connector(name: "api") { healthy breaker { state } requests failures lastError cache { hits misses } } } }');
  expect(r.body.errors).toBeUndefined();
  return (r.body.data!.hub as { connector: Status }).connector;
}

/** Polls `probe` until `done` holds (or fails with the last value after `timeoutMs`). */
async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value) && Date.now() < deadline) {
    await sleep(10);
    value = await probe();
  }
  expect(done(value), `condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`).toBe(true);
  return value;
}

/** Records when the upstream received each request (performance.now()), then answers with `handler`. */
function timed(times: number[], handler: Handler): Handler {
  return (req, res) => {
    times.push(performance.now());
    return handler(req, res);
  };
}

/** Answers with `handlers[n]` for the n-th request (the last one from then on). */
function sequence(...handlers: Handler[]): Handler {
  let n = 0;
  return (req, res) => handlers[Math.min(n++, handlers.length - 1)]!(req, res);
}

const ERROR_500: Handler = (_req, res) => json(res, 500, { message: 'database on fire' });

// ---- 1-4: retries, timeouts, Retry-After, idempotency --------------------------------------

describe('retries', () => {
  it('retries a 500 `retry.attempts` times, then fails with UPSTREAM_ERROR; the retries are counted in /metrics', async () => {
    const { upstream, h } = await setup({ retry: { attempts: 2, baseDelayMs: 10 } }, ERROR_500);
    const r = await gql(h.url, '{ ok thing(id: "1") { text } }');
    expect(r.body).toEqual({
      data: { ok: 'fine', thing: null },
      errors: [
        {
          message: `GET ${upstream.url}/things/1 answered 500: database on fire`,
          locations: [{ line: 1, column: 6 }],
          path: ['thing'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 500 },
        },
      ],
    });
    expect(upstream.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /things/1', 'GET /things/1', 'GET /things/1']);
    expect(await metric(h, 'junction_connector_retries_total{connector="api"}')).toBe(2);
    expect(await metric(h, 'junction_connector_requests_total{connector="api",outcome="error"}')).toBe(1);
  });

  it('a 500 followed by a 200 succeeds on the retry', async () => {
    const { upstream, h } = await setup({ retry: { attempts: 2, baseDelayMs: 10 } }, sequence(ERROR_500, things));
    const r = await gql(h.url, '{ thing(id: "1") { text } }');
    expect(r.body).toEqual({ data: { thing: { text: 'thing 1' } } });
    expect(upstream.requests).toHaveLength(2);
    expect(await metric(h, 'junction_connector_retries_total{connector="api"}')).toBe(1);
  });

  it('fails a call that hangs past timeoutMs with UPSTREAM_TIMEOUT (each attempt has its deadline); siblings resolve', async () => {
    const { upstream, h } = await setup({ timeoutMs: 150, retry: { attempts: 1, baseDelayMs: 10 } }, never);
    const started = performance.now();
    const r = await gql(h.url, '{ ok thing(id: "1") { text } }');
    const elapsed = performance.now() - started;
    expect(r.body).toEqual({
      data: { ok: 'fine', thing: null },
      errors: [
        {
          message: 'api did not answer within 150 ms',
          locations: [{ line: 1, column: 6 }],
          path: ['thing'],
          extensions: { code: 'UPSTREAM_TIMEOUT', connector: 'api', timeoutMs: 150 },
        },
      ],
    });
    // Two attempts (the first and one retry), each abandoned after 150 ms.
    expect(upstream.requests).toHaveLength(2);
    // Each attempt waited its 150 ms (a lower bound holds on a busy machine; an upper one would not).
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(await metric(h, 'junction_connector_requests_total{connector="api",outcome="timeout"}')).toBe(1);
  });

  it('waits for a 429 Retry-After in seconds, then succeeds', async () => {
    const times: number[] = [];
    const { upstream, h } = await setup(
      { retry: { attempts: 2, baseDelayMs: 10 } },
      timed(times, sequence((_q, res) => json(res, 429, { message: 'slow down' }, { 'retry-after': '1' }), things)),
    );
    const r = await gql(h.url, '{ thing(id: "1") { text } }');
    expect(r.body).toEqual({ data: { thing: { text: 'thing 1' } } });
    expect(upstream.requests).toHaveLength(2);
    // The retry waited for the Retry-After second (the backoff alone would be ~10 ms).
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(900);
  });

  it('waits for a 429 Retry-After given as an HTTP-date, then succeeds', async () => {
    const times: number[] = [];
    const { upstream, h } = await setup(
      { retry: { attempts: 2, baseDelayMs: 10 } },
      timed(
        times,
        sequence((_q, res) => {
          // An HTTP-date has whole seconds: 2 s ahead, truncated, is between 1 and 2 s away.
          const when = new Date(Date.now() + 2000).toUTCString();
          json(res, 429, { message: 'slow down' }, { 'retry-after': when });
        }, things),
      ),
    );
    const r = await gql(h.url, '{ thing(id: "1") { text } }');
    expect(r.body).toEqual({ data: { thing: { text: 'thing 1' } } });
    expect(upstream.requests).toHaveLength(2);
    // The retry waited for the Retry-After second (the backoff alone would be ~10 ms).
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(900);
  });

  it('does not wait for a Retry-After over retry.maxRetryAfterMs: RATE_LIMITED at once, with status and retryAfterMs', async () => {
    const { upstream, h } = await setup(
      { retry: { attempts: 2, baseDelayMs: 10, maxRetryAfterMs: 1000 } },
      (_q, res) => json(res, 429, { message: 'slow down' }, { 'retry-after': '30' }),
    );
    // Not waited for: one request, no retry (below), the answer says how long to back off.
    const r = await gql(h.url, '{ ok thing(id: "1") { text } }');
    expect(r.body).toEqual({
      data: { ok: 'fine', thing: null },
      errors: [
        {
          message: `GET ${upstream.url}/things/1 answered 429: slow down`,
          locations: [{ line: 1, column: 6 }],
          path: ['thing'],
          extensions: { code: 'RATE_LIMITED', connector: 'api', status: 429, retryAfterMs: 30000 },
        },
      ],
    });
    expect(upstream.requests).toHaveLength(1);
    // Never retried: the counter has no series for the connector at all.
    expect(await metric(h, 'junction_connector_retries_total{connector="api"}')).toBeUndefined();
  });

  it('does not retry a POST; retries it when it carries an Idempotency-Key, with the same key on every attempt', async () => {
    const { upstream, h } = await setup({ retry: { attempts: 2, baseDelayMs: 10 } }, (_q, res) => json(res, 503, { message: 'try later' }));
    const plain = await gql(h.url, 'mutation { placeOrder { id } }');
    expect(plain.body).toEqual({
      data: { placeOrder: null },
      errors: [
        {
          message: `POST ${upstream.url}/orders answered 503: try later`,
          locations: [{ line: 1, column: 12 }],
          path: ['placeOrder'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 503 },
        },
      ],
    });
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]!.headers['idempotency-key']).toBeUndefined();

    // With the key: 503, 503, then 201 — retried twice, and the order is placed once.
    upstream.requests.length = 0;
    upstream.handler = sequence(
      (_q, res) => json(res, 503, { message: 'try later' }),
      (_q, res) => json(res, 503, { message: 'try later' }),
      (_q, res) => json(res, 201, { id: 'o-1', text: 'placed' }),
    );
    const keyed = await gql(h.url, 'mutation { placeOrderKeyed(key: "order-42") { id text } }');
    expect(keyed.body).toEqual({ data: { placeOrderKeyed: { id: 'o-1', text: 'placed' } } });
    expect(upstream.requests.map((q) => [q.method, q.url, q.headers['idempotency-key']])).toEqual([
      ['POST', '/orders', 'order-42'],
      ['POST', '/orders', 'order-42'],
      ['POST', '/orders', 'order-42'],
    ]);
    expect(await metric(h, 'junction_connector_retries_total{connector="api"}')).toBe(2);
  });
});

// ---- 5: circuit breaker ----------------------------------------------------------------------

/** Subscribes to connectorStatus(name: "api") over graphql-ws and collects every event. */
async function watchStatus(h: TestHub) {
  const client: Client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  const events: ExecutionResult[] = [];
  const errors: unknown[] = [];
  const stop = client.subscribe(
    { query: 'subscription { connectorStatus(name: "api") { event at connector { name healthy breaker { state } } } }' },
    { next: (r) => void events.push(r as ExecutionResult), error: (e) => void errors.push(e), complete: () => {} },
  );
  cleanups.push(async () => {
    stop();
    await client.dispose();
  });
  // graphql-ws acknowledges a subscription silently: wait until the hub listens for it.
  const ee = (h.hub.pubsub as unknown as { ee: { listenerCount(e: string): number } }).ee;
  await until(async () => ee.listenerCount(CONNECTOR_STATUS), (n) => n === 1);
  return { events, errors };
}

const OPEN_MESSAGE = 'api is failing; its circuit breaker is open and the call was not made';

describe('circuit breaker', () => {
  it('opens after volumeThreshold failures, fails fast without calling the upstream, half-opens and closes; streams every transition', async () => {
    const { upstream, h } = await setup({ required: true, breaker: { volumeThreshold: 3, resetTimeoutMs: 400 } }, ERROR_500);
    const watch = await watchStatus(h);
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);

    const upstreamError = {
      message: `GET ${upstream.url}/things/1 answered 500: database on fire`,
      locations: [{ line: 1, column: 3 }],
      path: ['thing'],
      extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 500 },
    };
    for (let i = 0; i < 3; i++) {
      expect((await gql(h.url, '{ thing(id: "1") { text } }')).body).toEqual({ data: { thing: null }, errors: [upstreamError] });
    }
    expect(upstream.requests).toHaveLength(3);

    // Open: the call is not made.
    const rejected = await gql(h.url, '{ ok thing(id: "1") { text } }');
    expect(rejected.body).toEqual({
      data: { ok: 'fine', thing: null },
      errors: [{ message: OPEN_MESSAGE, locations: [{ line: 1, column: 6 }], path: ['thing'], extensions: { code: 'CIRCUIT_OPEN', connector: 'api' } }],
    });
    expect(upstream.requests).toHaveLength(3);

    // The management API names the upstream's error (not the breaker's refusal) as the last one.
    expect(await status(h)).toEqual({
      healthy: false,
      breaker: { state: 'OPEN' },
      requests: 4,
      failures: 4,
      lastError: upstreamError.message,
      cache: null,
    });
    const notReady = await fetch(`${h.origin}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({
      status: 'not ready',
      connectors: [{ name: 'api', type: 'http', required: true, healthy: false, lastError: upstreamError.message }],
    });
    expect(await metric(h, 'junction_connector_breaker_state{connector="api"}')).toBe(2);
    expect(await metric(h, 'junction_connector_breaker_transitions_total{connector="api",state="OPEN"}')).toBe(1);
    expect(await metric(h, 'junction_connector_requests_total{connector="api",outcome="circuit_open"}')).toBe(1);

    // After resetTimeoutMs: half-open; the upstream is fixed; the trial call succeeds and closes it.
    await sleep(400);
    await until(() => status(h), (s) => s.breaker.state === 'HALF_OPEN');
    expect(await metric(h, 'junction_connector_breaker_state{connector="api"}')).toBe(1);
    upstream.handler = things;
    expect((await gql(h.url, '{ thing(id: "1") { text } }')).body).toEqual({ data: { thing: { text: 'thing 1' } } });
    expect(upstream.requests).toHaveLength(4);
    expect(await status(h)).toMatchObject({ healthy: true, breaker: { state: 'CLOSED' } });
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);

    await until(async () => watch.events.length, (n) => n >= 3);
    expect(watch.errors).toEqual([]);
    expect(watch.events.map((e) => (e.data as { connectorStatus: unknown }).connectorStatus)).toEqual([
      { event: 'BREAKER_OPENED', at: expect.any(String), connector: { name: 'api', healthy: false, breaker: { state: 'OPEN' } } },
      { event: 'BREAKER_HALF_OPEN', at: expect.any(String), connector: { name: 'api', healthy: true, breaker: { state: 'HALF_OPEN' } } },
      { event: 'BREAKER_CLOSED', at: expect.any(String), connector: { name: 'api', healthy: true, breaker: { state: 'CLOSED' } } },
    ]);
    for (const e of watch.events) {
      const at = (e.data as { connectorStatus: { at: string } }).connectorStatus.at;
      expect(new Date(at).toISOString()).toBe(at);
    }

    expect(await metric(h, 'junction_connector_breaker_state{connector="api"}')).toBe(0);
    for (const state of ['OPEN', 'HALF_OPEN', 'CLOSED']) {
      expect(await metric(h, `junction_connector_breaker_transitions_total{connector="api",state="${state}"}`)).toBe(1);
    }
  });

  it('a half-open trial that fails opens the breaker again', async () => {
    const { upstream, h } = await setup({ breaker: { volumeThreshold: 2, resetTimeoutMs: 400 } }, ERROR_500);
    for (let i = 0; i < 2; i++) await gql(h.url, '{ thing(id: "1") { text } }');
    expect((await status(h)).breaker.state).toBe('OPEN');
    await sleep(400);
    await until(() => status(h), (s) => s.breaker.state === 'HALF_OPEN');
    const trial = await gql(h.url, '{ thing(id: "1") { text } }');
    expect(trial.body.errors?.[0]?.extensions).toEqual({ code: 'UPSTREAM_ERROR', connector: 'api', status: 500 });
    expect(upstream.requests).toHaveLength(3);
    expect((await status(h)).breaker.state).toBe('OPEN');
    const next = await gql(h.url, '{ thing(id: "1") { text } }');
    expect(next.body.errors?.[0]?.extensions).toEqual({ code: 'CIRCUIT_OPEN', connector: 'api' });
    expect(upstream.requests).toHaveLength(3);
  });

  it('resetBreaker closes an open breaker at once', async () => {
    const { upstream, h } = await setup({ breaker: { volumeThreshold: 3, resetTimeoutMs: 60_000 } }, ERROR_500);
    for (let i = 0; i < 3; i++) await gql(h.url, '{ thing(id: "1") { text } }');
    expect((await status(h)).breaker.state).toBe('OPEN');
    expect((await gql(h.url, '{ thing(id: "1") { text } }')).body.errors?.[0]?.extensions?.code).toBe('CIRCUIT_OPEN');

    upstream.handler = things;
    const reset = await gql(h.url, 'mutation { resetBreaker(name: "api") { state } }');
    expect(reset.body).toEqual({ data: { resetBreaker: { state: 'CLOSED' } } });
    expect((await gql(h.url, '{ thing(id: "1") { text } }')).body).toEqual({ data: { thing: { text: 'thing 1' } } });
    expect(upstream.requests).toHaveLength(4);
    expect(await status(h)).toMatchObject({ healthy: true, breaker: { state: 'CLOSED' } });
  });

  it('a 404 is the caller’s mistake, not an outage: it never opens the breaker', async () => {
    const { upstream, h } = await setup({ breaker: { volumeThreshold: 3, resetTimeoutMs: 60_000 } }, (_q, res) =>
      json(res, 404, { message: 'no such thing' }),
    );
    for (let i = 0; i < 6; i++) {
      const r = await gql(h.url, '{ thing(id: "404") { text } }');
      expect(r.body.errors).toEqual([
        {
          message: `GET ${upstream.url}/things/404 answered 404: no such thing`,
          locations: [{ line: 1, column: 3 }],
          path: ['thing'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 404 },
        },
      ]);
    }
    expect(upstream.requests).toHaveLength(6);
    // Nor in the connector's status: the upstream answered. /metrics has them as `refused`.
    expect(await status(h)).toEqual({ healthy: true, breaker: { state: 'CLOSED' }, requests: 6, failures: 0, lastError: null, cache: null });
    expect(await metric(h, 'junction_connector_requests_total{connector="api",outcome="refused"}')).toBe(6);
    expect(await metric(h, 'junction_connector_requests_total{connector="api",outcome="error"}')).toBeUndefined();
    expect(await metric(h, 'junction_connector_breaker_state{connector="api"}')).toBe(0);
    expect(await metric(h, 'junction_connector_breaker_transitions_total{connector="api",state="OPEN"}')).toBeUndefined();
  });
});

// ---- 6: upstream down ------------------------------------------------------------------------

describe('upstream down', () => {
  it('answers UPSTREAM_ERROR naming the method and URL; testConnector fails until the upstream is back', async () => {
    const { upstream, h } = await setup({ retry: { attempts: 1, baseDelayMs: 10 } }, things);
    const port = new URL(upstream.url).port;
    await upstream.stop();

    const r = await gql(h.url, '{ ok thing(id: "1") { text } }');
    expect(r.body).toEqual({
      data: { ok: 'fine', thing: null },
      errors: [
        {
          message: `GET ${upstream.url}/things/1 failed: ECONNREFUSED`,
          locations: [{ line: 1, column: 6 }],
          path: ['thing'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'api' },
        },
      ],
    });
    // Connection refused is transient: retried once, then given up.
    expect(await metric(h, 'junction_connector_retries_total{connector="api"}')).toBe(1);

    const down = await gql(h.url, 'mutation { testConnector(name: "api") { name ok latencyMs error } }');
    expect(down.body).toEqual({
      data: { testConnector: { name: 'api', ok: false, latencyMs: expect.any(Number), error: `connect ECONNREFUSED 127.0.0.1:${port}` } },
    });
    expect(await status(h)).toMatchObject({ healthy: false, lastError: `connect ECONNREFUSED 127.0.0.1:${port}` });

    await upstream.start();
    expect(upstream.url).toBe(`http://127.0.0.1:${port}`);
    const up = await gql(h.url, 'mutation { testConnector(name: "api") { name ok error } }');
    expect(up.body).toEqual({ data: { testConnector: { name: 'api', ok: true, error: null } } });
    expect((await status(h)).healthy).toBe(true);
    expect((await gql(h.url, '{ thing(id: "1") { text } }')).body).toEqual({ data: { thing: { text: 'thing 1' } } });
  });
});

// ---- 7: rate limit ---------------------------------------------------------------------------

describe('connector rate limit', () => {
  it('rps 1, burst 2: of three calls in quick succession the third fails with RATE_LIMITED and never reaches the upstream', async () => {
    const { upstream, h } = await setup({ rateLimit: { rps: 1, burst: 2 } }, things);
    const r = await gql(h.url, '{ a: thing(id: "1") { text } b: thing(id: "2") { text } c: thing(id: "3") { text } }');
    expect(r.body.data).toEqual({ a: { text: 'thing 1' }, b: { text: 'thing 2' }, c: null });
    expect(r.body.errors).toEqual([
      {
        message: expect.stringMatching(/^api is over its rate limit; retry in \d+ ms$/),
        locations: [{ line: 1, column: 57 }],
        path: ['c'],
        extensions: { code: 'RATE_LIMITED', connector: 'api', retryAfterMs: expect.any(Number) },
      },
    ]);
    const { retryAfterMs } = r.body.errors![0]!.extensions as { retryAfterMs: number };
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(1000);
    expect(r.body.errors![0]!.message).toBe(`api is over its rate limit; retry in ${retryAfterMs} ms`);
    expect(upstream.requests.map((q) => q.url)).toEqual(['/things/1', '/things/2']);
    expect(await metric(h, 'junction_connector_rate_limited_total{connector="api"}')).toBe(1);
    // Its own limit is not the upstream failing: the breaker stays closed.
    expect(await status(h)).toMatchObject({ healthy: true, breaker: { state: 'CLOSED' } });
  });
});

// ---- 8-11: cache, in-flight dedupe, stale-if-open, Redis ---------------------------------------

describe('cache and dedupe', () => {
  // The connector cache itself: the whole-response cache (on by default) would answer the repeats first.
  const connectorCacheOnly = { server: { responseCache: { enabled: false } } };

  it('@cache(ttlMs) on an @http field: two requests make one upstream call; hub shows hits 1, misses 1', async () => {
    const { upstream, h } = await setup({}, things, connectorCacheOnly);
    for (let i = 0; i < 2; i++) {
      expect((await gql(h.url, '{ cached(id: "1") { id text } }')).body).toEqual({ data: { cached: { id: '1', text: 'thing 1' } } });
    }
    expect(upstream.requests.map((q) => q.url)).toEqual(['/cached/1']);
    expect((await status(h)).cache).toEqual({ hits: 1, misses: 1 });
    expect(await metric(h, 'junction_connector_cache_total{connector="api",result="hit"}')).toBe(1);
    expect(await metric(h, 'junction_connector_cache_total{connector="api",result="miss"}')).toBe(1);
    // Other arguments are another entry.
    await gql(h.url, '{ cached(id: "2") { id } }');
    expect(upstream.requests.map((q) => q.url)).toEqual(['/cached/1', '/cached/2']);
  });

  it('a connector-level cache.ttlMs caches every GET call, never a POST', async () => {
    const { upstream, h } = await setup({ cache: { ttlMs: 60_000 } }, things, connectorCacheOnly);
    for (let i = 0; i < 3; i++) {
      expect((await gql(h.url, '{ thing(id: "1") { text } }')).body).toEqual({ data: { thing: { text: 'thing 1' } } });
    }
    expect(upstream.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /things/1']);
    expect((await status(h)).cache).toEqual({ hits: 2, misses: 1 });

    for (let i = 0; i < 2; i++) await gql(h.url, 'mutation { placeOrder { id } }');
    expect(upstream.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /things/1', 'POST /orders', 'POST /orders']);
  });

  it('shares one in-flight upstream call among concurrent requests for the same field (no @cache)', async () => {
    const { upstream, h } = await setup({}, async (req, res) => {
      await sleep(200);
      things(req, res);
    });
    const results = await Promise.all(Array.from({ length: 5 }, () => gql(h.url, '{ thing(id: "1") { id text } }')));
    for (const r of results) expect(r.body).toEqual({ data: { thing: { id: '1', text: 'thing 1' } } });
    expect(upstream.requests).toHaveLength(1);
    // Once it answered, the next request calls the upstream again (dedupe is not a cache).
    await gql(h.url, '{ thing(id: "1") { id } }');
    expect(upstream.requests).toHaveLength(2);
  });

  it('staleIfOpen: while the breaker is open, the last cached value is served and marked in extensions.stale', async () => {
    const { upstream, h } = await setup({ breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 } }, (_q, res) =>
      json(res, 200, { id: 'q', text: 'first quote' }),
    );
    expect((await gql(h.url, '{ quote { text } }')).body).toEqual({ data: { quote: { text: 'first quote' } } });
    await sleep(80); // past the 50 ms TTL
    upstream.handler = ERROR_500;

    // Expired and the breaker still closed: the failure shows (stale values are for an open breaker only).
    const expected = {
      data: { ok: 'fine', quote: null },
      errors: [
        {
          message: `GET ${upstream.url}/quote answered 500: database on fire`,
          locations: [{ line: 1, column: 6 }],
          path: ['quote'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 500 },
        },
      ],
    };
    expect((await gql(h.url, '{ ok quote { text } }')).body).toEqual(expected);
    expect((await gql(h.url, '{ ok quote { text } }')).body).toEqual(expected);
    expect((await status(h)).breaker.state).toBe('OPEN');

    const stale = await gql(h.url, '{ ok quote { text } }');
    expect(stale.body).toEqual({
      data: { ok: 'fine', quote: { text: 'first quote' } },
      extensions: { stale: [{ path: ['quote'], connector: 'api' }] },
    });
    expect(upstream.requests).toHaveLength(3);
    expect(await metric(h, 'junction_connector_cache_total{connector="api",result="stale"}')).toBe(1);

    // A field without staleIfOpen still fails fast.
    const other = await gql(h.url, '{ thing(id: "1") { text } }');
    expect(other.body.errors?.[0]).toEqual({
      message: OPEN_MESSAGE,
      locations: [{ line: 1, column: 3 }],
      path: ['thing'],
      extensions: { code: 'CIRCUIT_OPEN', connector: 'api' },
    });
    expect(other.body.extensions).toBeUndefined();
  });

  it('cache.store redis://: a second hub finds the first hub’s cached value (one upstream call)', async () => {
    await assertRedisUp();
    const upstream = await upstreamOf(things);
    const config = { cache: { store: REDIS_URL } };
    const first = await hubOf({ baseUrl: upstream.url, retry: { attempts: 0 } }, config);
    const second = await hubOf({ baseUrl: upstream.url, retry: { attempts: 0 } }, config);
    // A fresh id per run: an earlier run's entry (same port by chance) must not answer.
    const id = randomUUID();
    const query = `{ cached(id: "${id}") { id text } }`;
    const expected = { data: { cached: { id, text: `thing ${id}` } } };

    expect((await gql(first.url, query)).body).toEqual(expected);
    expect(upstream.requests).toHaveLength(1);
    expect((await gql(second.url, query)).body).toEqual(expected);
    expect(upstream.requests).toHaveLength(1);
    expect((await status(first)).cache).toEqual({ hits: 0, misses: 1 });
    expect((await status(second)).cache).toEqual({ hits: 1, misses: 0 });
  });
});

const REDIS_URL = 'redis://127.0.0.1:6379';
const REDIS_START = 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no';

/** Fails (never skips) when nothing listens on 127.0.0.1:6379, saying how to start Redis. */
async function assertRedisUp(): Promise<void> {
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port: 6379 });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
  if (!reachable) throw new Error(`Redis is not reachable on 127.0.0.1:6379 (needed by this test). Start it with:\n  ${REDIS_START}`);
}

// ---- 12: outbound auth -----------------------------------------------------------------------

describe('outbound auth through the connector', () => {
  it('sends a bearer token to the upstream and never shows it in a GraphQL error or the logs', async () => {
    const token = 'tok-5f1c9e2a7b3d4e8f';
    const { upstream, h } = await setup({ auth: { type: 'bearer', token }, retry: { attempts: 1, baseDelayMs: 10 } }, (req, res) => {
      // An upstream that echoes the credentials it refuses into its error message.
      if (req.url === '/things/2') return json(res, 503, { message: `refused ${req.headers.authorization}` });
      things(req, res);
    });
    expect((await gql(h.url, '{ thing(id: "1") { text } }')).body).toEqual({ data: { thing: { text: 'thing 1' } } });
    expect(upstream.requests[0]!.headers.authorization).toBe(`Bearer ${token}`);

    const r = await gql(h.url, '{ thing(id: "2") { text } }');
    expect(r.body).toEqual({
      data: { thing: null },
      errors: [
        {
          message: `GET ${upstream.url}/things/2 answered 503: refused Bearer [REDACTED]`,
          locations: [{ line: 1, column: 3 }],
          path: ['thing'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 503 },
        },
      ],
    });
    expect(upstream.to('/things/2').map((q) => q.headers.authorization)).toEqual([`Bearer ${token}`, `Bearer ${token}`]);
    // The retry was logged with the upstream's message, scrubbed.
    expect(h.logs.some((l) => l.msg === 'retrying')).toBe(true);
    expect(h.rawLogs()).toContain('refused Bearer [REDACTED]');
    expect(h.rawLogs()).not.toContain(token);
    // Nor in the management API's lastError (GraphQL data, not an error, so formatError never sees it).
    expect((await status(h)).lastError).toBe(`GET ${upstream.url}/things/2 answered 503: refused Bearer [REDACTED]`);
    expect(await (await fetch(`${h.origin}/metrics`)).text()).not.toContain(token);
  });

  it('an oauth2 connector whose token endpoint is down fails the field with UPSTREAM_ERROR saying so', async () => {
    const closed = await closedPort();
    const tokenUrl = `http://127.0.0.1:${closed}/oauth/token`;
    const { upstream, h } = await setup(
      { auth: { type: 'oauth2', tokenUrl, clientId: 'junction-hub', clientSecret: 'client-secret-8d7c6b5a' } },
      things,
    );
    const r = await gql(h.url, '{ ok thing(id: "1") { text } }');
    // The token URL sits under `auth`, so it counts as a secret (SPEC §3) and is redacted too.
    // The token endpoint's own UpstreamError, not wrapped as a failure of the API call.
    expect(r.body).toEqual({
      data: { ok: 'fine', thing: null },
      errors: [
        {
          message: 'OAuth2 token endpoint [REDACTED] is unreachable (ECONNREFUSED)',
          locations: [{ line: 1, column: 6 }],
          path: ['thing'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'api' },
        },
      ],
    });
    expect(upstream.requests).toHaveLength(0);
    expect(h.rawLogs()).not.toContain('client-secret-8d7c6b5a');
  });
});

/** A port on 127.0.0.1 nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
