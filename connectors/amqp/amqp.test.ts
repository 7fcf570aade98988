// `type: amqp`, end to end against the real RabbitMQ on 127.0.0.1:5672: a real hub (in process,
// or `junction serve` child processes) consumes real queues into its event log and publishes
// `@publish` mutations with publisher confirms. The connection is cut and frozen with a TCP proxy
// in front of the broker, never by calling a method. Every queue and exchange is named for this
// run and deleted at the end; what the tests check is what a client or the broker sees.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type GetMessage, type Options } from 'amqplib';
import { type Client, createClient, type FormattedExecutionResult } from 'graphql-ws';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { consumerStatus, gql, storedEvents, startHub, type TestHub, until } from '../../test/helpers.ts';
import { HubProcesses, type Served } from '../../test/processes.ts';
import { startTcpProxy, type TcpProxy } from '../../test/tcp-proxy.ts';

const BROKER = 'amqp://guest:guest@127.0.0.1:5672';
const PG = 'postgres://postgres@127.0.0.1:5432/test';
const run = randomUUID().replaceAll('-', '').slice(0, 10);
const named = (what: string) => `jx-amqp-${run}-${what}`;

// ---- the test's own RabbitMQ client -------------------------------------------------------------

let admin: ChannelModel;
let confirm: ConfirmChannel;
const queues = new Set<string>();
const exchanges = new Set<string>();

beforeAll(async () => {
  admin = await amqp.connect(BROKER);
  confirm = await admin.createConfirmChannel();
});

afterAll(async () => {
  // The hub declared some of these; delete them all, each on a fresh channel (a failure closes it).
  for (const queue of queues) await onChannel((ch) => ch.deleteQueue(queue)).catch(() => undefined);
  for (const exchange of exchanges) await onChannel((ch) => ch.deleteExchange(exchange)).catch(() => undefined);
  await admin.close();
});

async function onChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await admin.createChannel();
  channel.on('error', () => undefined);
  try {
    return await work(channel);
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** A queue name for this run, deleted at the end. */
function queue(what: string): string {
  const name = named(what);
  queues.add(name);
  return name;
}

/** An exchange name for this run, deleted at the end. */
function exchange(what: string): string {
  const name = named(what);
  exchanges.add(name);
  return name;
}

/** Publishes as an outside system does, confirmed by the broker. */
async function send(exchangeName: string, routingKey: string, body: Buffer | string | object, options: Options.Publish = {}): Promise<void> {
  const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  await new Promise<void>((resolve, reject) =>
    confirm.publish(exchangeName, routingKey, content, { persistent: true, ...options }, (error: unknown) => (error ? reject(error) : resolve())),
  );
}

/** Ready messages in a queue (unacknowledged ones are not counted: stop the consumer first). */
const depth = (name: string) => onChannel(async (ch) => (await ch.checkQueue(name)).messageCount);

// ---- the hub ------------------------------------------------------------------------------------

const status = (url: string, name = 'mq') => consumerStatus(url, name);

const events = (url: string, source = 'mq') => storedEvents(url, source);

const hubs = new Set<TestHub>();
afterEach(async () => {
  for (const h of hubs) await h.stop();
  hubs.clear();
});

async function hub(files: Record<string, string>, connectors: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestHub> {
  const h = await startHub(files, { connectors, ...extra });
  hubs.add(h);
  return h;
}

async function stopHub(h: TestHub): Promise<void> {
  hubs.delete(h);
  await h.stop();
}

const PLAIN_SDL = { 'schema/s.graphql': 'type Query { ping: String }\n' };

function mq(extra: Record<string, unknown>, url = BROKER) {
  return { mq: { type: 'amqp', url, ...extra } };
}

// ---- graphql-ws ---------------------------------------------------------------------------------

const clients = new Set<Client>();
afterEach(async () => {
  await Promise.all([...clients].map((c) => c.dispose()));
  clients.clear();
});

interface Subscription {
  results: FormattedExecutionResult<Record<string, unknown>, unknown>[];
  errors: unknown[];
  /** Resolves once `count` results have arrived. */
  received(count: number): Promise<void>;
}

function subscribe(wsUrl: string, query: string, variables: Record<string, unknown> = {}, onNext?: (r: FormattedExecutionResult<Record<string, unknown>, unknown>) => void): Subscription {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  clients.add(client);
  const results: Subscription['results'] = [];
  const errors: unknown[] = [];
  client.subscribe<Record<string, unknown>>(
    { query, variables },
    {
      next: (result) => {
        results.push(result);
        onNext?.(result);
      },
      error: (error) => errors.push(error),
      complete: () => {},
    },
  );
  return {
    results,
    errors,
    received: (count) =>
      until(() => {
        if (errors.length > 0) throw new Error(`subscription failed: ${JSON.stringify(errors)}`);
        return results.length >= count;
      }, `${count} subscription results`, 2400),
  };
}

// ---- config -------------------------------------------------------------------------------------

describe('amqp config', () => {
  const parse = (connector: Record<string, unknown>) =>
    parseConfig({ connectors: { mq: { type: 'amqp', ...connector } } }, { file: 'junction.config.yaml', baseDir: '/tmp', env: {} });

  it('applies the defaults and refuses bad keys by path, never echoing the URL', async () => {
    const config = await parse({ url: BROKER, consume: [{ queue: 'orders' }] });
    expect(config.connectors.mq).toMatchObject({
      url: BROKER,
      prefetch: 10,
      maxDeliveries: 5,
      consume: [{ queue: 'orders', bindings: [], queueType: 'classic' }],
    });
    const error = await parse({
      url: 'http://app:hunter2secret@mq',
      prefetch: 0,
      consume: [{ queue: 'amq.x', bindings: [{ exchange: 'bad name', routingKey: 'a' }] }, { queue: 'q', queueType: 'stream' }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const text = String(error);
    expect(text).toMatch(/connectors\.mq\.url: expected an amqp:\/\/ or amqps:\/\/ URL, got a "http:" URL/);
    expect(text).toMatch(/connectors\.mq\.prefetch: expected a positive integer/);
    expect(text).toMatch(/connectors\.mq\.consume\.0\.queue: expected a queue name not starting with "amq\."/);
    expect(text).toMatch(/connectors\.mq\.consume\.0\.bindings\.0\.exchange: expected an exchange name/);
    expect(text).toMatch(/connectors\.mq\.consume\.1\.queueType: expected classic or quorum/);
    expect(text).not.toContain('hunter2secret');
    // Checked once every key is valid on its own:
    const whole = String(await parse({ url: BROKER, consume: [{ queue: 'q' }, { queue: 'q' }], cache: { ttlMs: 5 }, auth: { type: 'bearer', token: 't' } }).catch((e: unknown) => e));
    expect(whole).toMatch(/connectors\.mq\.consume\.1\.queue: expected each queue once/);
    expect(whole).toMatch(/connectors\.mq\.cache: does not apply/);
    expect(whole).toMatch(/connectors\.mq\.auth: does not apply to an amqp connector: give the credentials in the url/);
  });
});

// ---- consuming ----------------------------------------------------------------------------------

describe('consuming', () => {
  it('stores each message of a bound queue once (type, delivery id, payload), then acknowledges it', async () => {
    const orders = exchange('orders'); // missing: the hub declares it (durable topic)
    const q = queue('consume');
    const h = await hub(PLAIN_SDL, mq({ consume: [{ queue: q, bindings: [{ exchange: orders, routingKey: 'order.*' }] }] }));
    await until(async () => (await status(h.url)).consumer.connected, 'the consumer');

    await send(orders, 'order.created', { id: 1 }, { messageId: `m1-${run}`, type: 'OrderCreated' });
    await send(orders, 'order.paid', { id: 1, paid: true }, { messageId: `m2-${run}` });
    await send(orders, 'order.shipped', { id: 1, shipped: true }); // no message-id
    await send(orders, 'order.created', { id: 1, again: true }, { messageId: `m1-${run}`, type: 'OrderCreated' }); // a duplicate id
    await send(orders, 'invoice.paid', { ignored: true }, { messageId: `x-${run}` }); // not bound: never reaches the queue
    await until(async () => {
      const c = (await status(h.url)).consumer;
      return c.stored + c.duplicates === 4;
    }, 'four messages handled');

    const stored = await events(h.url);
    expect(stored.map(({ type, deliveryId, payload }) => ({ type, deliveryId, payload }))).toEqual([
      { type: 'OrderCreated', deliveryId: `m1-${run}`, payload: { id: 1 } },
      { type: 'order.paid', deliveryId: `m2-${run}`, payload: { id: 1, paid: true } },
      { type: 'order.shipped', deliveryId: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), payload: { id: 1, shipped: true } },
    ]);
    expect(await status(h.url)).toEqual({
      type: 'amqp',
      healthy: true,
      lastError: null,
      consumer: {
        connected: true,
        received: 4,
        stored: 3,
        duplicates: 1,
        redelivered: 0,
        deadLettered: 0,
        lag: expect.any(Number),
        lastEventAt: expect.any(String),
      },
    });
    // Acknowledged: once the hub is gone (its unacknowledged messages back in the queue), the queue is empty.
    await stopHub(h);
    expect(await depth(q)).toBe(0);
    // The exchange the hub declared routes by topic.
    await onChannel((ch) => ch.checkExchange(orders));
  });

  it('a message that is not JSON is redelivered until maxDeliveries, recorded under mq.dead with the reason, then routed to the dead-letter exchange', async () => {
    const dlx = exchange('dlx');
    const parked = queue('parked');
    await onChannel(async (ch) => {
      await ch.assertExchange(dlx, 'fanout', { durable: true }); // exists: the hub uses it as it is
      await ch.assertQueue(parked, { durable: true });
      await ch.bindQueue(parked, dlx, '');
    });
    const withDlx = queue('with-dlx');
    const plain = queue('plain');
    const quorum = queue('quorum');
    const h = await hub(
      PLAIN_SDL,
      mq({
        maxDeliveries: 3,
        consume: [{ queue: withDlx, deadLetterExchange: dlx }, { queue: plain }, { queue: quorum, queueType: 'quorum' }],
      }),
    );
    await until(async () => (await status(h.url)).consumer.connected, 'the consumer');

    await send('', withDlx, 'not json {', { messageId: `bad-1-${run}`, type: 'broken' });
    await send('', plain, Buffer.from([0xff, 0xfe, 0x00]), { messageId: `bad-2-${run}` });
    await send('', quorum, '{"unterminated": ', { messageId: `bad-3-${run}` });
    await send('', plain, { fine: true }, { messageId: `good-${run}` });
    await until(async () => (await status(h.url)).consumer.deadLettered === 3, 'three dead letters');

    const dead = await events(h.url, 'mq.dead');
    const byId = Object.fromEntries(dead.map((e) => [e.deliveryId, e]));
    expect(byId[`bad-1-${run}`]).toMatchObject({
      type: 'broken',
      payload: { reason: expect.stringMatching(/JSON/i), origin: `queue ${withDlx}`, deliveries: 3, deliveryId: `bad-1-${run}`, body: 'not json {', encoding: 'utf8' },
    });
    expect(byId[`bad-2-${run}`]).toMatchObject({ type: plain, payload: { reason: expect.stringMatching(/UTF-8/), origin: `queue ${plain}`, deliveries: 3, encoding: 'base64' } });
    // A quorum queue: RabbitMQ counted the deliveries (x-delivery-count).
    expect(byId[`bad-3-${run}`]).toMatchObject({ payload: { reason: expect.stringMatching(/JSON/i), origin: `queue ${quorum}`, deliveries: 3 } });
    expect(await events(h.url)).toEqual([expect.objectContaining({ deliveryId: `good-${run}`, payload: { fine: true } })]);
    const c = (await status(h.url)).consumer;
    expect(c).toMatchObject({ received: 10, stored: 1, redelivered: 6, deadLettered: 3 });

    // RabbitMQ's own dead-lettering took the first one to the dead-letter exchange, with x-death.
    const routed: GetMessage[] = [];
    await until(async () => {
      const got = await onChannel((ch) => ch.get(parked, { noAck: true }));
      if (got) routed.push(got);
      return routed.length > 0;
    }, 'the dead-lettered message in the DLX queue');
    expect(routed[0]!.content.toString()).toBe('not json {');
    expect(routed[0]!.properties.messageId).toBe(`bad-1-${run}`);
    expect(routed[0]!.properties.headers?.['x-death']?.[0]).toMatchObject({ queue: withDlx, reason: 'rejected' });
    // Nothing is left behind anywhere.
    await stopHub(h);
    expect([await depth(withDlx), await depth(plain), await depth(quorum)]).toEqual([0, 0, 0]);
  });

  it('credentials the broker refuses: the hub still starts, the connector is unhealthy with the reason, the password is nowhere', async () => {
    const password = 'Wr0ng-amqp-Passw0rd';
    const h = await hub(PLAIN_SDL, mq({ required: true, consume: [{ queue: queue('refused') }] }, `amqp://guest:${password}@127.0.0.1:5672`));
    const s = await status(h.url);
    expect(s).toMatchObject({ healthy: false, consumer: { connected: false, received: 0 } });
    expect(s.lastError).toMatch(/ACCESS.REFUSED/);
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(503);
    const tested = await gql(h.url, 'mutation { testConnector(name: "mq") { ok error } }');
    expect(tested.body.data).toEqual({ testConnector: { ok: false, error: expect.stringMatching(/not connected to RabbitMQ 127\.0\.0\.1:5672/) } });
    expect(JSON.stringify([s, tested.body])).not.toContain(password);
    expect(h.rawLogs()).not.toContain(password);
  });
});

// ---- connection loss ----------------------------------------------------------------------------

describe('connection loss (a TCP proxy in front of RabbitMQ)', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(5672);
  });
  afterAll(() => proxy.close());

  it('shows the outage (health, consumer, /readyz), refuses publishes meanwhile, reconnects and consumes what was sent during it; an ack lost with the connection means one redelivery, stored once', async () => {
    const q = queue('outage');
    const SDL = `type Query { ping: String }
type Mutation { emit(input: String!): PublishReceipt! @publish(connector: "mq", to: "${q}", payload: "{\\"text\\": {args.input}}") }`;
    const h = await hub({ 'schema/s.graphql': SDL }, mq({ required: true, consume: [{ queue: q }] }, `amqp://guest:guest@127.0.0.1:${proxy.port}`));
    await until(async () => (await status(h.url)).consumer.connected, 'the consumer');
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);

    // The hub stores a message, but its ack never reaches the broker; then the connection goes.
    proxy.freeze();
    await send('', q, { n: 0 }, { messageId: `n0-${run}` });
    await until(async () => (await status(h.url)).consumer.stored === 1, 'the first message stored');
    await proxy.cut();

    await until(async () => {
      const s = await status(h.url);
      return !s.healthy && !s.consumer.connected;
    }, 'the outage to show');
    const down = await status(h.url);
    expect(down.lastError).toMatch(/^connection lost: /);
    const ready = await fetch(`${h.origin}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', connectors: [{ name: 'mq', type: 'amqp', required: true, healthy: false }] });
    const refused = await gql(h.url, 'mutation { emit(input: "during") { messageId } }');
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', connector: 'mq' });
    expect(refused.body.errors?.[0]?.message).toMatch(/not connected to RabbitMQ/);

    for (let n = 1; n <= 3; n++) await send('', q, { n }, { messageId: `n${n}-${run}` });
    await proxy.restore();
    await until(async () => {
      const s = await status(h.url);
      return s.healthy && s.consumer.connected && s.consumer.stored === 4;
    }, 'reconnected, and the messages sent during the outage stored');
    await until(async () => (await status(h.url)).consumer.duplicates === 1, 'the unacknowledged message redelivered');
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
    expect((await events(h.url)).map((e) => e.payload)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
    expect((await status(h.url)).consumer).toMatchObject({ received: 5, stored: 4, duplicates: 1, redelivered: 1 });
    // Publishing works again on the new connection.
    const emitted = await gql(h.url, 'mutation { emit(input: "after") { to duplicate } }');
    expect(emitted.body).toEqual({ data: { emit: { to: q, duplicate: false } } });
    await until(async () => (await status(h.url)).consumer.stored === 5, 'the published message consumed');
    await stopHub(h);
    expect(await depth(q)).toBe(0);
  });
});

describe('a consumed queue deleted under the hub', () => {
  it('the hub reconnects, declares the queue and its binding again, and consumes on', async () => {
    const ex = exchange('redeclare');
    const q = queue('redeclare');
    const h = await hub(PLAIN_SDL, mq({ consume: [{ queue: q, bindings: [{ exchange: ex, routingKey: 'x.#' }] }] }));
    await until(async () => (await status(h.url)).consumer.connected, 'the consumer');
    await onChannel((ch) => ch.deleteQueue(q));
    // Declared again by the hub: it exists, bound, and what is sent to the exchange is consumed.
    await until(async () => (await onChannel((ch) => ch.checkQueue(q)).then((r) => r.consumerCount === 1, () => false)), 'the queue declared again and consumed');
    await send(ex, 'x.after', { after: true }, { messageId: `after-${run}` });
    await until(async () => (await status(h.url)).consumer.stored === 1, 'the message stored');
    expect(await status(h.url)).toMatchObject({ healthy: true, consumer: { connected: true } });
    expect((await events(h.url)).map((e) => [e.type, e.payload])).toEqual([['x.after', { after: true }]]);
  });
});

// ---- real processes: SIGKILL and SIGTERM ---------------------------------------------------------

describe('a real `junction serve` process', () => {
  const processes = new HubProcesses();
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(5672);
  });
  afterAll(async () => {
    await processes.cleanup();
    await proxy.close();
  });

  const project = (config: Record<string, unknown>) =>
    processes.temp({ 'schema/app.graphql': 'type Query { ping: String }\n', 'junction.config.yaml': JSON.stringify({ server: { host: '127.0.0.1' }, ...config }) });

  it('killed with SIGKILL after storing a message but before RabbitMQ got the ack: after a restart the redelivery is recognised, the message is stored once', async () => {
    const q = queue('sigkill');
    const dir = project({ connectors: mq({ consume: [{ queue: q }] }, `amqp://guest:guest@127.0.0.1:${proxy.port}`) });
    const first = await processes.serve(dir);
    await until(async () => (await status(first.url)).consumer.connected, 'the consumer');

    proxy.freeze(); // the hub's ack never reaches the broker
    await send('', q, { order: 7 }, { messageId: `order-7-${run}`, type: 'order.placed' });
    await until(async () => (await events(first.url)).length === 1, 'the message stored');
    expect(await processes.kill(first)).toEqual({ code: null, signal: 'SIGKILL' });
    await proxy.restore();

    const second = await processes.serve(dir);
    await until(async () => (await status(second.url)).consumer.duplicates === 1, 'the redelivery counted as a duplicate');
    expect(await status(second.url)).toMatchObject({ consumer: { received: 1, stored: 0, duplicates: 1, redelivered: 1 } });
    expect((await events(second.url)).map(({ type, deliveryId, payload }) => ({ type, deliveryId, payload }))).toEqual([
      { type: 'order.placed', deliveryId: `order-7-${run}`, payload: { order: 7 } },
    ]);
    expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
    expect(await depth(q)).toBe(0);
  });

  it('stopped with SIGTERM while consuming: exits 0, and every message is either stored (and acked) or still in the queue', async () => {
    const q = queue('sigterm');
    await onChannel((ch) => ch.assertQueue(q, { durable: true }));
    const published = 1000;
    for (let i = 0; i < published; i++) {
      confirm.sendToQueue(q, Buffer.from(JSON.stringify({ i })), { persistent: true, messageId: `msg-${i}-${run}` });
    }
    await confirm.waitForConfirms();
    const dir = project({ connectors: mq({ prefetch: 50, consume: [{ queue: q }] }) });
    const served = await processes.serve(dir);
    await until(async () => (await status(served.url)).consumer.stored > 0, 'consuming under way');
    expect(await processes.stop(served)).toEqual({ code: 0, signal: null });

    // A second hub on the same event log, consuming another (empty) queue, reads what was stored.
    const reader = project({ connectors: mq({ consume: [{ queue: queue('sigterm-idle') }] }) });
    const { cpSync } = await import('node:fs');
    cpSync(`${dir}/.junction`, `${reader}/.junction`, { recursive: true });
    const second = await processes.serve(reader);
    const stored = await events(second.url);
    await processes.stop(second);
    const ids = new Set(stored.map((e) => e.deliveryId));
    expect(ids.size).toBe(stored.length); // none twice
    const queued = await depth(q);
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.length + queued).toBe(published);
  });
});

// ---- publishing ---------------------------------------------------------------------------------

const PUBLISH_SDL = (q: string, ex: string) => `
type Query { ping: String }
input OrderInput { sku: String!, qty: Int! }
type Order { sku: String!, qty: Int! }
type Mutation {
  placeOrder(input: OrderInput!, key: String): PublishReceipt! @publish(connector: "mq", to: "${ex}/order.placed", idempotencyKey: "{args.key}")
  enqueue(input: OrderInput!, key: String): PublishReceipt! @publish(connector: "mq", to: "${q}", idempotencyKey: "{args.key}")
  publishTo(to: String!): PublishReceipt! @publish(connector: "mq", to: "{args.to}", payload: "{\\"x\\": 1}")
}
type Subscription { orderPlaced(after: ID): Order @subscribe(source: "mq", types: ["order.placed"]) }
`;

describe('@publish', () => {
  it('a mutation publishes to RabbitMQ, the same hub consumes it, a graphql-ws subscription sees it', async () => {
    const ex = exchange('round-trip');
    const q = queue('round-trip');
    const h = await hub({ 'schema/s.graphql': PUBLISH_SDL(queue('unused'), ex) }, mq({ consume: [{ queue: q, bindings: [{ exchange: ex, routingKey: 'order.#' }] }] }));
    await until(async () => (await status(h.url)).consumer.connected, 'the consumer');
    // `after: "0"`: from the log's start, so the subscriptions cannot miss the event, however late they start.
    const onEvents = subscribe(h.wsUrl, 'subscription { events(source: "mq", after: "0") { type deliveryId payload } }');
    const onOrders = subscribe(h.wsUrl, 'subscription { orderPlaced(after: "0") { sku qty } }');

    const res = await gql(h.url, 'mutation { placeOrder(input: { sku: "A-1", qty: 2 }) { connector to messageId duplicate } }');
    expect(res.body).toEqual({ data: { placeOrder: { connector: 'mq', to: `${ex}/order.placed`, messageId: expect.stringMatching(/^[0-9a-f-]{36}$/), duplicate: false } } });
    const { messageId } = res.body.data!.placeOrder as { messageId: string };
    await onEvents.received(1);
    await onOrders.received(1);
    expect(onEvents.results[0]!.data).toEqual({ events: { type: 'order.placed', deliveryId: messageId, payload: { sku: 'A-1', qty: 2 } } });
    expect(onOrders.results[0]!.data).toEqual({ orderPlaced: { sku: 'A-1', qty: 2 } });
  });

  it('refuses what RabbitMQ cannot route or does not have (UPSTREAM_ERROR) and a destination it cannot take (BAD_USER_INPUT), before sending', async () => {
    const lonely = exchange('lonely');
    await onChannel((ch) => ch.assertExchange(lonely, 'topic', { durable: true })); // no queue bound
    const h = await hub({ 'schema/s.graphql': PUBLISH_SDL(queue('unused-2'), exchange('unused-2')) }, mq({}));
    const publishTo = (to: string) => gql(h.url, 'mutation($to: String!) { publishTo(to: $to) { messageId } }', { to });

    const unroutable = await publishTo(`${lonely}/nobody.listens`);
    expect(unroutable.body.data).toBeNull();
    expect(unroutable.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/unroutable \(NO_ROUTE\)/), extensions: { code: 'UPSTREAM_ERROR', connector: 'mq' } });
    const missing = await publishTo(`${named('no-such-exchange')}/x`);
    expect(missing.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(/NOT_FOUND - no exchange/), extensions: { code: 'UPSTREAM_ERROR', connector: 'mq' } });
    // The channel the broker closed is replaced: the next publish works (a queue to the default exchange).
    const q = queue('after-refusal');
    await onChannel((ch) => ch.assertQueue(q, { durable: true }));
    expect((await publishTo(q)).body.errors).toBeUndefined();
    expect(await depth(q)).toBe(1);

    for (const [to, problem] of [
      ['', /empty/],
      [`${lonely}/order.*`, /wildcards/],
      [`${lonely}/order.#`, /wildcards/],
      ['bad exchange/key', /may only hold letters/],
      [`${lonely}/${'k'.repeat(256)}`, /routing key is longer than 255 bytes/],
      ['q'.repeat(256), /queue name is longer than 255 bytes/],
      ['line\nbreak', /control characters/],
      ['/', /needs a queue name/],
    ] as const) {
      const res = await publishTo(to);
      expect(res.body.errors?.[0], to).toMatchObject({ message: expect.stringMatching(problem), extensions: { code: 'BAD_USER_INPUT', connector: 'mq' } });
    }
    expect((await status(h.url)).healthy).toBe(true);
  });

  it('an idempotency key publishes once: the message-id is the key, a repeat answers duplicate: true', async () => {
    const q = queue('idempotent');
    await onChannel((ch) => ch.assertQueue(q, { durable: true }));
    const h = await hub({ 'schema/s.graphql': PUBLISH_SDL(q, exchange('unused-3')) }, mq({}));
    const place = () => gql(h.url, 'mutation($k: String) { enqueue(input: { sku: "B-2", qty: 1 }, key: $k) { messageId duplicate } }', { k: `order-${run}` });
    expect((await place()).body).toEqual({ data: { enqueue: { messageId: `order-${run}`, duplicate: false } } });
    expect((await place()).body).toEqual({ data: { enqueue: { messageId: `order-${run}`, duplicate: true } } });
    expect(await depth(q)).toBe(1);
    const message = await onChannel((ch) => ch.get(q, { noAck: true }));
    expect(message && { body: JSON.parse(message.content.toString()), ...message.properties }).toMatchObject({
      body: { sku: 'B-2', qty: 1 },
      messageId: `order-${run}`,
      contentType: 'application/json',
      deliveryMode: 2,
      headers: { 'x-deduplication-header': `order-${run}` },
    });
    // Without a key, each publish is its own message, confirmed one by one, many at once.
    const many = await Promise.all(Array.from({ length: 25 }, () => gql(h.url, 'mutation { enqueue(input: { sku: "D-4", qty: 4 }) { messageId duplicate } }')));
    const ids = many.map((r) => (r.body.data?.enqueue as { messageId: string } | undefined)?.messageId);
    expect(new Set(ids).size).toBe(25);
    expect(ids.every((id) => /^[0-9a-f-]{36}$/.test(id ?? ''))).toBe(true);
    expect(await depth(q)).toBe(25);
  });

  it('an idempotency key holds across two hub instances sharing a PostgreSQL event log: one message', async () => {
    const schema = `jx_amqp_${run}`;
    const db = new pg.Client(PG);
    await db.connect();
    await db.query(`CREATE SCHEMA ${schema}`);
    try {
      const q = queue('two-hubs');
      await onChannel((ch) => ch.assertQueue(q, { durable: true }));
      const eventLog = `${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      const files = { 'schema/s.graphql': PUBLISH_SDL(q, exchange('unused-4')) };
      const [a, b] = await Promise.all([hub(files, mq({}), { eventLog }), hub(files, mq({}), { eventLog })]);
      const place = (h: TestHub) => gql(h.url, 'mutation($k: String) { enqueue(input: { sku: "C-3", qty: 3 }, key: $k) { messageId duplicate } }', { k: `shared-${run}` });
      const first = await place(a);
      const second = await place(b);
      expect([first.body, second.body]).toEqual([
        { data: { enqueue: { messageId: `shared-${run}`, duplicate: false } } },
        { data: { enqueue: { messageId: `shared-${run}`, duplicate: true } } },
      ]);
      expect(await depth(q)).toBe(1);
      await stopHub(a);
      await stopHub(b);
    } finally {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.end();
    }
  });
});

// ---- the worked example -------------------------------------------------------------------------

describe('the worked example', () => {
  it('an order placed by a mutation → RabbitMQ → a subscription and an e-mail', async () => {
    // A plain local SMTP server (no TLS, no auth), like a development relay.
    const mails: { to: string[]; raw: string }[] = [];
    const smtp = new SMTPServer({
      secure: false,
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      closeTimeout: 200,
      logger: false,
      onData(stream, session, callback) {
        let raw = '';
        stream.on('data', (c: Buffer) => (raw += c.toString()));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    try {
      const shop = exchange('shop');
      const q = queue('shop-orders');
      const SDL = `
type Query { ping: String }
input OrderInput { id: ID!, email: String!, sku: String!, qty: Int! }
type Order { id: ID!, email: String!, sku: String!, qty: Int! }
type Mutation {
  "Publishes the order to the shop exchange; answers once RabbitMQ confirmed it."
  placeOrder(input: OrderInput!): PublishReceipt! @publish(connector: "orders", to: "${shop}/order.placed", idempotencyKey: "{args.input.id}")
  "Sends the confirmation e-mail of one order."
  confirmOrder(id: ID!, email: String!, sku: String!, qty: Int!): MailReceipt
    @mail(connector: "mail", to: "{args.email}", subject: "Order {args.id} confirmed", text: "{args.qty} x {args.sku}: on its way.")
}
type Subscription {
  "Orders as the hub consumed them from RabbitMQ (replay with after: <cursor>)."
  orderPlaced(after: ID): Order! @subscribe(source: "orders", types: ["order.placed"])
}
`;
      const h = await hub(
        { 'schema/shop.graphql': SDL },
        {
          orders: { type: 'amqp', url: BROKER, consume: [{ queue: q, bindings: [{ exchange: shop, routingKey: 'order.*' }] }] },
          mail: { type: 'smtp', url: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`, from: 'shop@example.com', requireTLS: false },
        },
      );
      await until(async () => (await status(h.url, 'orders')).consumer.connected, 'the consumer');

      // A storefront watches orders; a mailer worker, also a subscriber, confirms each by e-mail.
      // `after: "0"`: from the log's start (a real client resumes from its last cursor instead).
      const storefront = subscribe(h.wsUrl, 'subscription { orderPlaced(after: "0") { id sku qty } }');
      const confirmations: Promise<unknown>[] = [];
      subscribe(h.wsUrl, 'subscription { orderPlaced(after: "0") { id email sku qty } }', {}, (result) => {
        const order = result.data!.orderPlaced as Record<string, unknown>;
        confirmations.push(gql(h.url, 'mutation($id: ID!, $email: String!, $sku: String!, $qty: Int!) { confirmOrder(id: $id, email: $email, sku: $sku, qty: $qty) { accepted } }', order));
      });

      const order = { id: `o-${run}`, email: 'ann@example.com', sku: 'TEA-1', qty: 2 };
      const placed = await gql(h.url, 'mutation($o: OrderInput!) { placeOrder(input: $o) { messageId duplicate } }', { o: order });
      expect(placed.body).toEqual({ data: { placeOrder: { messageId: order.id, duplicate: false } } });

      await storefront.received(1);
      expect(storefront.results[0]!.data).toEqual({ orderPlaced: { id: order.id, sku: 'TEA-1', qty: 2 } });
      await until(() => mails.length === 1, 'the confirmation e-mail');
      expect(await Promise.all(confirmations)).toEqual([expect.objectContaining({ body: { data: { confirmOrder: { accepted: ['ann@example.com'] } } } })]);
      expect(mails[0]!.to).toEqual(['ann@example.com']);
      expect(mails[0]!.raw).toMatch(new RegExp(`Subject: Order ${order.id} confirmed`));
      expect(mails[0]!.raw).toContain('2 x TEA-1: on its way.');
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });
});
