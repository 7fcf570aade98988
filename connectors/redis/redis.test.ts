// `type: redis`: Redis Streams consumer groups into the event log and `@publish` as XADD, against
// the real Redis on 127.0.0.1:6379: entries stored then XACKed, redeliveries stored once, bad
// payloads retried then dead-lettered, a cut connection (TCP proxy) shown and recovered from,
// SIGKILL between store and ack and SIGTERM with entries in flight on real `junction serve`
// processes, the round trip to a graphql-ws subscription, and idempotency keys across a restart.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createClient as createRedisClient, type RedisClientType } from '@redis/client';
import { type Client, createClient, type FormattedExecutionResult } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { consumerStatus, gql, storedEvents, ROOT, SPAWN_TIMEOUT_MS, startHub, type TestHub, until } from '../../test/helpers.ts';
import { HubProcesses } from '../../test/processes.ts';
import { startTcpProxy, type TcpProxy } from '../../test/tcp-proxy.ts';

const REDIS = 'redis://127.0.0.1:6379';
const run = randomUUID().replaceAll('-', '').slice(0, 10);

let redis: RedisClientType;
const created = new Set<string>();
/** A stream name unique to this run, deleted (with its dead-letter copy, if any) after the tests. */
function stream(label: string): string {
  const name = `junction-test:${run}:${label}`;
  created.add(name);
  return name;
}
const cmd = (...args: string[]) => redis.sendCommand(args);

beforeAll(async () => {
  redis = createRedisClient({ url: REDIS }) as RedisClientType;
  await redis.connect();
});
afterAll(async () => {
  if (created.size > 0) await redis.sendCommand(['DEL', ...created]);
  await redis.close();
});

const processes = new HubProcesses();
afterAll(() => processes.cleanup());

const hubs: TestHub[] = [];
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.stop()));
});

const events = storedEvents;

const status = (url: string, name = 'q') => consumerStatus(url, name);

/** Entries of the group not acknowledged yet (XPENDING summary). */
async function pending(name: string, group = 'hub'): Promise<number> {
  const summary = (await cmd('XPENDING', name, group)) as unknown as [number, ...unknown[]];
  return Number(summary[0]);
}

function hubConfig(connector: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { connectors: { q: { type: 'redis', url: REDIS, claimIdleMs: 500, blockMs: 500, ...connector } }, ...extra };
}

async function hub(sdl: string, connector: Record<string, unknown>): Promise<TestHub> {
  const h = await startHub({ 'schema/app.graphql': sdl }, hubConfig(connector));
  hubs.push(h);
  return h;
}

const PLAIN_SDL = 'type Query { ok: String }\n';

// ---- config ---------------------------------------------------------------------------------

describe('config', () => {
  const load = (connector: Record<string, unknown>) => parseConfig(hubConfig(connector), { file: 'junction.config.yaml', baseDir: ROOT, env: {} });

  it('takes a redis:// URL and consume entries, with their defaults', async () => {
    const config = await load({ url: 'redis://:s3cret@127.0.0.1:6379/2', consume: [{ stream: 'orders', group: 'hub' }] });
    expect(config.connectors.q).toMatchObject({
      consume: [{ stream: 'orders', group: 'hub', start: 'oldest' }],
      maxDeliveries: 5,
      batch: 16,
    });
  });

  it('refuses other schemes, bad stream names, duplicate entries and other auth types, naming the key and never the password', async () => {
    const problems = async (connector: Record<string, unknown>) => {
      try {
        await load(connector);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    const scheme = await problems({ url: 'http://user:hunter2@127.0.0.1:6379' });
    expect(scheme).toContain('connectors.q.url: expected a redis:// or rediss:// URL, got a "http:" URL');
    expect(scheme).not.toContain('hunter2');
    expect(await problems({ consume: [{ stream: 'orders.*', group: 'hub' }] })).toContain('connectors.q.consume.0.stream');
    expect(await problems({ consume: [{ stream: '', group: 'hub' }] })).toContain('connectors.q.consume.0.stream');
    expect(await problems({ consume: [{ stream: 'a', group: 'g' }, { stream: 'a', group: 'g' }] })).toContain('connectors.q.consume.1: expected each { stream, group } once');
    expect(await problems({ auth: { type: 'bearer', token: 'x' } })).toContain('connectors.q.auth.type: expected basic');
    expect(await problems({ consume: [{ stream: 'a', group: 'g', start: 'latest' }] })).toContain('connectors.q.consume.0.start');
  });
});

// ---- consuming ------------------------------------------------------------------------------

describe('consuming a stream through a consumer group (real Redis)', () => {
  it('stores each entry as an event (type, entry id, payload), XACKs it, and shows the counts', async () => {
    const s = stream('consume');
    // Added before the hub ever started: the group it creates starts at the oldest entry.
    const first = String(await cmd('XADD', s, '*', 'type', 'order.created', 'payload', '{"order":1,"lines":[{"sku":"A"}]}'));
    const h = await hub(PLAIN_SDL, { consume: [{ stream: s, group: 'hub' }] });
    const second = String(await cmd('XADD', s, '*', 'payload', '{"order":2}'));
    const third = String(await cmd('XADD', s, '*', 'sku', 'B-7', 'qty', '3'));

    await until(async () => (await events(h.url, 'q')).length === 3, 'three events');
    expect((await events(h.url, 'q')).map(({ type, deliveryId, payload }) => ({ type, deliveryId, payload }))).toEqual([
      { type: 'order.created', deliveryId: first, payload: { order: 1, lines: [{ sku: 'A' }] } },
      { type: s, deliveryId: second, payload: { order: 2 } },
      { type: s, deliveryId: third, payload: { sku: 'B-7', qty: '3' } },
    ]);
    await until(async () => (await pending(s)) === 0, 'every entry acknowledged');
    await until(async () => (await status(h.url)).consumer.lag === 0, 'lag 0');
    expect(await status(h.url)).toMatchObject({
      healthy: true,
      lastError: null,
      consumer: { connected: true, received: 3, stored: 3, duplicates: 0, redelivered: 0, deadLettered: 0, lag: 0 },
    });
  });

  it('a group created with start: new skips what the stream held before', async () => {
    const s = stream('start-new');
    await cmd('XADD', s, '*', 'payload', '{"old":true}');
    const h = await hub(PLAIN_SDL, { consume: [{ stream: s, group: 'hub', start: 'new' }] });
    const fresh = String(await cmd('XADD', s, '*', 'payload', '{"old":false}'));
    await until(async () => (await events(h.url, 'q')).length === 1, 'the new entry');
    expect((await events(h.url, 'q')).map((e) => [e.deliveryId, e.payload])).toEqual([[fresh, { old: false }]]);
  });

  it('claims an entry left pending by another consumer, and stores a redelivery of a stored entry once', async () => {
    const s = stream('redeliver');
    await cmd('XGROUP', 'CREATE', s, 'hub', '0', 'MKSTREAM');
    const left = String(await cmd('XADD', s, '*', 'payload', '{"n":1}'));
    // A consumer that read the entry and died before acknowledging it.
    await cmd('XREADGROUP', 'GROUP', 'hub', 'gone-consumer', 'COUNT', '10', 'STREAMS', s, '>');
    expect(await pending(s)).toBe(1);

    const h = await hub(PLAIN_SDL, { consume: [{ stream: s, group: 'hub' }] });
    await until(async () => (await events(h.url, 'q')).length === 1 && (await pending(s)) === 0, 'the claimed entry stored and acknowledged');
    expect((await events(h.url, 'q')).map((e) => e.deliveryId)).toEqual([left]);
    expect((await status(h.url)).consumer).toMatchObject({ received: 1, stored: 1, redelivered: 1, duplicates: 0 });

    // The stored, acknowledged entry handed out again (pending with another consumer, as after a
    // lost XACK): the hub claims it, finds its entry id stored, acknowledges it, stores nothing.
    await cmd('XCLAIM', s, 'hub', 'gone-consumer', '0', left, 'FORCE');
    expect(await pending(s)).toBe(1);
    await until(async () => (await status(h.url)).consumer.duplicates === 1, 'the redelivery counted as a duplicate');
    await until(async () => (await pending(s)) === 0, 'the redelivery acknowledged');
    expect((await events(h.url, 'q')).map((e) => e.deliveryId)).toEqual([left]);
    expect((await status(h.url)).consumer).toMatchObject({ received: 2, stored: 1, redelivered: 2, duplicates: 1 });
  });

  it('retries an entry that is not JSON until maxDeliveries, then records it under <name>.dead with the reason and XACKs it', async () => {
    const s = stream('dead');
    const h = await hub(PLAIN_SDL, { consume: [{ stream: s, group: 'hub' }], maxDeliveries: 3 });
    const bad = String(await cmd('XADD', s, '*', 'type', 'order.created', 'payload', 'not json {'));
    const good = String(await cmd('XADD', s, '*', 'payload', '{"fine":true}'));

    await until(async () => (await events(h.url, 'q.dead')).length === 1, 'the dead letter');
    const [dead] = await events(h.url, 'q.dead');
    expect(dead).toMatchObject({
      type: 'order.created',
      deliveryId: bad,
      payload: { origin: `stream ${s} (group hub)`, deliveries: 3, type: 'order.created', deliveryId: bad, body: 'not json {', encoding: 'utf8' },
    });
    expect((dead!.payload as { reason: string }).reason).toMatch(/JSON/i);
    await until(async () => (await pending(s)) === 0, 'the dead-lettered entry acknowledged');
    // The entry behind it was not held up, and the bad one never became an event.
    expect((await events(h.url, 'q')).map((e) => e.deliveryId)).toEqual([good]);
    expect((await status(h.url)).consumer).toMatchObject({ received: 4, stored: 1, deadLettered: 1, redelivered: 2 });
  });
});

// ---- connection cut -------------------------------------------------------------------------

describe('a cut connection (TCP proxy in front of Redis)', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(6379);
  });
  afterAll(() => proxy.close());

  it('shows the outage (unhealthy, not connected, /readyz 503 when required) and consumes what was added meanwhile once back', async () => {
    const s = stream('cut');
    const h = await startHub({ 'schema/app.graphql': PLAIN_SDL }, hubConfig({ url: `redis://127.0.0.1:${proxy.port}`, required: true, consume: [{ stream: s, group: 'hub' }] }));
    hubs.push(h);
    await cmd('XADD', s, '*', 'payload', '{"n":1}');
    await until(async () => (await events(h.url, 'q')).length === 1, 'the first event');
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);

    await proxy.cut();
    await until(async () => !(await status(h.url)).healthy, 'unhealthy');
    const down = await status(h.url);
    expect(down.consumer.connected).toBe(false);
    expect(down.lastError).toMatch(/^connection lost: /);
    const readyz = await fetch(`${h.origin}/readyz`);
    expect(readyz.status).toBe(503);
    expect(((await readyz.json()) as { connectors: { name: string; healthy: boolean }[] }).connectors).toContainEqual(expect.objectContaining({ name: 'q', healthy: false }));

    // Added while the hub cannot reach Redis.
    const during = [];
    for (let n = 2; n <= 4; n++) during.push(String(await cmd('XADD', s, '*', 'payload', JSON.stringify({ n }))));

    await proxy.restore();
    await until(async () => (await status(h.url)).healthy && (await status(h.url)).consumer.connected, 'healthy again');
    await until(async () => (await events(h.url, 'q')).length === 4, 'the entries added during the outage');
    const stored = await events(h.url, 'q');
    expect(stored.map((e) => e.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    expect(stored.slice(1).map((e) => e.deliveryId)).toEqual(during);
    await until(async () => (await pending(s)) === 0, 'all acknowledged');
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
  });

  it('a hub started while Redis is unreachable serves, shows the connector unhealthy, and consumes once Redis is reachable', async () => {
    const s = stream('late');
    await proxy.cut();
    const h = await startHub(
      { 'schema/app.graphql': PLAIN_SDL },
      hubConfig({ url: `redis://127.0.0.1:${proxy.port}`, required: true, timeoutMs: 1000, consume: [{ stream: s, group: 'hub' }] }),
    );
    hubs.push(h);
    const down = await status(h.url);
    expect(down).toMatchObject({ healthy: false, consumer: { connected: false } });
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(503);
    const id = String(await cmd('XADD', s, '*', 'payload', '{"late":true}'));

    await proxy.restore();
    await until(async () => (await events(h.url, 'q')).length === 1, 'the entry');
    expect((await events(h.url, 'q')).map((e) => [e.deliveryId, e.payload])).toEqual([[id, { late: true }]]);
    expect(await status(h.url)).toMatchObject({ healthy: true, consumer: { connected: true } });
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
  });
});

// ---- publishing -----------------------------------------------------------------------------

interface Subscription {
  results: FormattedExecutionResult<Record<string, unknown>, { cursor?: string }>[];
  received(count: number): Promise<void>;
}

const wsClients = new Set<Client>();
afterEach(async () => {
  await Promise.all([...wsClients].map((c) => c.dispose()));
  wsClients.clear();
});

/** Subscribes over graphql-ws; resolves once the server acknowledged the connection. */
async function subscribe(wsUrl: string, query: string): Promise<Subscription> {
  let acked!: () => void;
  const connected = new Promise<void>((r) => (acked = r));
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, on: { connected: () => acked() } });
  wsClients.add(client);
  const results: Subscription['results'] = [];
  const errors: unknown[] = [];
  client.subscribe<Record<string, unknown>, { cursor?: string }>({ query }, { next: (r) => results.push(r), error: (e) => errors.push(e), complete: () => {} });
  await connected;
  return {
    results,
    received: (count) => until(() => {
      if (errors.length > 0) throw new Error(`subscription failed: ${JSON.stringify(errors)}`);
      return results.length >= count;
    }, `${count} subscription results`),
  };
}

const publishSdl = (s: string) => `
type Query { ok: String }
input OrderInput { sku: String!, qty: Int! }
type Order { sku: String! qty: Int! }
type Mutation {
  placeOrder(input: OrderInput!, key: String): PublishReceipt! @publish(connector: "q", to: ${JSON.stringify(s)}, idempotencyKey: "{args.key}")
  publishTo(to: String!, input: OrderInput!): PublishReceipt! @publish(connector: "q", to: "{args.to}")
}
type Subscription { orders(after: ID): Order! @subscribe(source: "q") }
`;
const PLACE = 'mutation($input: OrderInput!, $key: String) { placeOrder(input: $input, key: $key) { connector to messageId duplicate } }';
const PUBLISH_TO = 'mutation($to: String!) { publishTo(to: $to, input: { sku: "A", qty: 1 }) { messageId } }';

describe('@publish (XADD)', () => {
  it('round trip: the mutation answers with the XADD id, the hub consumes the entry, a graphql-ws subscription sees it', async () => {
    const s = stream('roundtrip');
    const h = await hub(publishSdl(s), { consume: [{ stream: s, group: 'hub' }] });
    const sub = await subscribe(h.wsUrl, 'subscription { orders { sku qty } }');
    await sub.received(0);

    const res = await gql(h.url, PLACE, { input: { sku: 'A-1', qty: 2 } });
    expect(res.body.errors).toBeUndefined();
    const receipt = res.body.data!.placeOrder as { messageId: string };
    expect(receipt).toEqual({ connector: 'q', to: s, messageId: expect.stringMatching(/^\d+-\d+$/), duplicate: false });
    // The entry as written: one field, payload, the input as JSON.
    expect(await cmd('XRANGE', s, '-', '+')).toEqual([[receipt.messageId, ['payload', '{"sku":"A-1","qty":2}']]]);

    await sub.received(1);
    expect(sub.results[0]!.data).toEqual({ orders: { sku: 'A-1', qty: 2 } });
    const [event] = await events(h.url, 'q');
    expect(event).toMatchObject({ type: s, deliveryId: receipt.messageId });
    expect(sub.results[0]!.extensions).toEqual({ cursor: event!.id });
  });

  it('the same idempotency key twice publishes one entry and answers the first receipt with duplicate: true', async () => {
    const s = stream('idem');
    const h = await hub(publishSdl(s), {});
    const first = await gql(h.url, PLACE, { input: { sku: 'A', qty: 1 }, key: `k-${run}` });
    const again = await gql(h.url, PLACE, { input: { sku: 'A', qty: 1 }, key: `k-${run}` });
    const receipt = first.body.data!.placeOrder as { messageId: string; duplicate: boolean };
    expect(receipt.duplicate).toBe(false);
    expect(again.body.data!.placeOrder).toEqual({ ...receipt, duplicate: true });
    expect(await cmd('XLEN', s)).toBe(1);
    const other = await gql(h.url, PLACE, { input: { sku: 'A', qty: 1 }, key: `other-${run}` });
    expect(other.body.data!.placeOrder).toMatchObject({ duplicate: false });
    expect(await cmd('XLEN', s)).toBe(2);
  });

  it('refuses an invalid stream name before sending (BAD_USER_INPUT), and a key Redis refuses is UPSTREAM_ERROR', async () => {
    const s = stream('refused');
    const h = await hub(publishSdl(s), {});
    for (const to of ['', 'orders.*', 'a b', 'x'.repeat(257), 'line\nbreak']) {
      const res = await gql(h.url, PUBLISH_TO, { to });
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', connector: 'q' });
      expect(res.body.data).toBeNull();
    }
    expect((await status(h.url)).healthy).toBe(true);

    await cmd('SET', s, 'not a stream');
    const wrong = await gql(h.url, PUBLISH_TO, { to: s });
    expect(wrong.body.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', connector: 'q' });
    expect(wrong.body.errors?.[0]?.message).toContain('WRONGTYPE');
    expect(wrong.body.data).toBeNull();
  });

  it('a publish Redis never confirms is UPSTREAM_TIMEOUT, not a receipt', async () => {
    const proxy = await startTcpProxy(6379);
    try {
      const s = stream('unconfirmed');
      const h = await hub(publishSdl(s), { url: `redis://127.0.0.1:${proxy.port}`, timeoutMs: 1000 });
      proxy.freeze(); // the XADD never reaches Redis
      const res = await gql(h.url, PLACE, { input: { sku: 'A', qty: 1 } });
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_TIMEOUT', connector: 'q' });
      expect(res.body.data).toBeNull();
      expect(await cmd('EXISTS', s)).toBe(0);
    } finally {
      await proxy.close();
    }
  });
});

// ---- real processes -------------------------------------------------------------------------

// Spawned hubs run dist/, which `npm test` builds before vitest starts (never rebuilt here: other
// test files spawn hubs from dist/ at the same time).
describe('real `junction serve` processes', () => {
  const write = (dir: string, connector: Record<string, unknown>, sdl = PLAIN_SDL) => {
    writeFileSync(path.join(dir, 'schema/app.graphql'), sdl);
    writeFileSync(path.join(dir, 'junction.config.yaml'), JSON.stringify({ server: { host: '127.0.0.1' }, ...hubConfig(connector) }, null, 2));
  };
  const project = (connector: Record<string, unknown>, sdl = PLAIN_SDL) => {
    const dir = processes.temp({ 'schema/app.graphql': sdl, 'junction.config.yaml': '{}' });
    write(dir, connector, sdl);
    return dir;
  };

  it(
    'SIGKILL between storing and acknowledging: after a restart the entry is delivered again and stored once',
    async () => {
      const proxy = await startTcpProxy(6379);
      try {
        const s = stream('sigkill');
        // The first hub: never claims (its own entry is what is left pending), reads with a long block.
        const dir = project({ url: `redis://127.0.0.1:${proxy.port}`, consume: [{ stream: s, group: 'hub' }], claimIdleMs: 600_000, blockMs: 600_000, timeoutMs: 2000 });
        const first = await processes.serve(dir);
        // Its XREADGROUP is waiting in Redis: what it receives from now on still reaches it.
        await until(async () => String(await cmd('CLIENT', 'LIST')).split('\n').some((l) => l.includes(`:${s}`) && l.includes('cmd=xreadgroup') && / flags=b /.test(l)), 'the hub blocked in XREADGROUP', 2400);
        proxy.freeze(); // nothing the hub sends reaches Redis any more: its XACK is lost
        const id = String(await cmd('XADD', s, '*', 'type', 'order.paid', 'payload', '{"order":42}'));
        await until(async () => (await events(first.url, 'q')).length === 1, 'the first hub stored the entry', 2400);
        expect(await processes.kill(first)).toEqual({ code: null, signal: 'SIGKILL' });
        await proxy.restore();
        expect(await pending(s)).toBe(1); // stored, never acknowledged

        // The restarted hub (another process: another consumer name) claims the entry once idle.
        write(dir, { url: `redis://127.0.0.1:${proxy.port}`, consume: [{ stream: s, group: 'hub' }], claimIdleMs: 1000 });
        const second = await processes.serve(dir);
        await until(async () => (await status(second.url)).consumer.duplicates === 1, 'the redelivery counted', 2400);
        await until(async () => (await pending(s)) === 0, 'the redelivery acknowledged', 2400);
        const stored = await events(second.url, 'q');
        expect(stored.map(({ type, deliveryId, payload }) => ({ type, deliveryId, payload }))).toEqual([{ type: 'order.paid', deliveryId: id, payload: { order: 42 } }]);
        expect((await status(second.url)).consumer).toMatchObject({ received: 1, stored: 0, duplicates: 1, redelivered: 1 });
        expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
      } finally {
        await proxy.close();
      }
    },
    6 * SPAWN_TIMEOUT_MS,
  );

  it(
    'SIGTERM with entries in flight exits 0; each is stored and acknowledged or left pending, and the restarted hub stores the rest once',
    async () => {
      const s = stream('sigterm');
      const count = 600;
      // A fixed consumer name: the restarted hub reads what it left pending at once.
      const dir = project({ consume: [{ stream: s, group: 'hub' }], consumer: `hub-${run}`, claimIdleMs: 600_000, batch: 50 });
      const first = await processes.serve(dir);
      const ids: string[] = [];
      for (let n = 0; n < count; n++) ids.push(String(await cmd('XADD', s, '*', 'payload', JSON.stringify({ n }))));
      await until(async () => (await status(first.url)).consumer.stored > 0, 'the first entries stored', 2400);
      expect(await processes.stop(first)).toEqual({ code: 0, signal: null });

      const second = await processes.serve(dir);
      await until(async () => (await events(second.url, 'q')).length === count, 'every entry stored', 2400);
      const stored = await events(second.url, 'q');
      expect(stored.map((e) => e.deliveryId)).toEqual(ids); // each once, in stream order
      expect(stored.map((e) => (e.payload as { n: number }).n)).toEqual(ids.map((_, n) => n));
      await until(async () => (await pending(s)) === 0, 'all acknowledged', 2400);
      // Everything the first hub stored, it acknowledged before exiting: the second hub (same
      // consumer name, so it read the first one's pending entries again) met no stored entry.
      expect((await status(second.url)).consumer.duplicates).toBe(0);
      expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
    },
    6 * SPAWN_TIMEOUT_MS,
  );

  it(
    'an idempotency key holds across a restart (event log on SQLite in the project folder)',
    async () => {
      const s = stream('idem-restart');
      const dir = project({}, publishSdl(s));
      const key = `restart-${run}`;
      const first = await processes.serve(dir);
      const one = await gql(first.url, PLACE, { input: { sku: 'A', qty: 1 }, key });
      expect(one.body.data!.placeOrder).toMatchObject({ duplicate: false });
      expect(await processes.stop(first)).toEqual({ code: 0, signal: null });

      const second = await processes.serve(dir);
      const two = await gql(second.url, PLACE, { input: { sku: 'A', qty: 1 }, key });
      expect(two.body.data!.placeOrder).toEqual({ ...(one.body.data!.placeOrder as object), duplicate: true });
      expect(await cmd('XLEN', s)).toBe(1);
      expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
    },
    4 * SPAWN_TIMEOUT_MS,
  );
});
