// `type: nats`, end to end against the real NATS server with JetStream on 127.0.0.1:4222: a real
// hub consumes durable pull consumers into its event log and publishes `@publish` mutations; a
// TCP proxy cuts the connection or swallows the hub's acknowledgements; real `junction serve`
// processes are killed with SIGKILL and stopped with SIGTERM. What is asserted is what a client
// of the hub or of NATS sees: GraphQL answers, /readyz, consumer and stream state on the server.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Client, createClient, type FormattedExecutionResult } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { consumerStatus, gql, storedEvents, ROOT, startHub, type TestHub, until } from '../../test/helpers.ts';
import { HubProcesses } from '../../test/processes.ts';
import { startTcpProxy, type TcpProxy } from '../../test/tcp-proxy.ts';

const require = createRequire(import.meta.url);
const { connect, headers: natsHeaders } = require('@nats-io/transport-node') as typeof import('@nats-io/transport-node');
const { AckPolicy, jetstream, jetstreamManager } = require('@nats-io/jetstream') as typeof import('@nats-io/jetstream');

const NATS_PORT = 4222;
const NATS = `nats://127.0.0.1:${NATS_PORT}`;
const run = randomUUID().replaceAll('-', '').slice(0, 10);

/** A stream name and subject prefix of this run: `JX_<run>_<label>`, `jx.<run>.<label>`. */
function names(label: string): { stream: string; prefix: string } {
  const stream = `JX_${run}_${label}`.toUpperCase();
  created.add(stream);
  return { stream, prefix: `jx.${run}.${label}` };
}
const created = new Set<string>();

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  nc = await connect({ servers: `127.0.0.1:${NATS_PORT}` });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

const processes = new HubProcesses();
const hubs: TestHub[] = [];
const proxies: TcpProxy[] = [];
afterAll(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
  await processes.cleanup();
  await Promise.all(proxies.map((p) => p.close()));
  for (const stream of created) await jsm.streams.delete(stream).catch(() => undefined);
  await nc.close();
});

async function proxy(): Promise<TcpProxy> {
  const p = await startTcpProxy(NATS_PORT);
  proxies.push(p);
  return p;
}

/** Publishes straight to JetStream (not through the hub); `id` becomes the Nats-Msg-Id header. */
async function send(subject: string, body: string | object, id?: string) {
  const data = typeof body === 'string' ? body : JSON.stringify(body);
  const h = natsHeaders();
  if (id !== undefined) h.set('Nats-Msg-Id', id);
  return js.publish(subject, data, id !== undefined ? { headers: h } : {});
}

const events = storedEvents;

const status = (url: string, name = 'bus') => consumerStatus(url, name);

/** What the server says of the hub's durable consumer. */
async function consumerInfo(stream: string, durable = 'bus') {
  const info = await jsm.consumers.info(stream, durable);
  return { pending: info.num_pending, ackPending: info.num_ack_pending };
}

const PLAIN_SDL = 'type Query { ok: String }\n';

async function hub(connector: Record<string, unknown>, sdl = PLAIN_SDL, files: Record<string, string> = {}): Promise<TestHub> {
  const h = await startHub({ 'schema/app.graphql': sdl, ...files }, { connectors: { bus: { type: 'nats', url: NATS, ...connector } } });
  hubs.push(h);
  return h;
}

async function stopHub(h: TestHub): Promise<void> {
  hubs.splice(hubs.indexOf(h), 1);
  await h.stop();
}

// ---- configuration ----------------------------------------------------------------------------

describe('nats config', () => {
  const parse = (connector: Record<string, unknown>) =>
    parseConfig({ connectors: { bus: { type: 'nats', ...connector } } }, { file: 'junction.config.yaml', baseDir: ROOT, env: {} });

  it('applies the defaults', async () => {
    const config = await parse({ url: NATS });
    expect(config.connectors.bus).toMatchObject({ consume: [], ackWaitMs: 30_000, redeliveryDelayMs: 1000, prefetch: 100, maxDeliveries: 5 });
  });

  it('refuses another scheme, bad stream names and bad subjects, naming the key path and never the URL', async () => {
    const error = await parse({
      url: 'amqp://app:hunter2secret@mq:5672',
      consume: [{ stream: 'A.B', subjects: ['ok.>', 'a.>.b', 'a..b', ''] }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const text = String(error);
    expect(text).toMatch(/connectors\.bus\.url: expected a nats:\/\/ URL, got a "amqp:" URL/);
    expect(text).toMatch(/connectors\.bus\.consume\.0\.stream: expected a name without spaces/);
    expect(text).toMatch(/connectors\.bus\.consume\.0\.subjects\.1: expected a NATS subject: ">" is a whole token, and the last one/);
    expect(text).toMatch(/connectors\.bus\.consume\.0\.subjects\.2: expected a NATS subject: a subject has no empty token/);
    expect(text).not.toContain('hunter2secret');
  });
});

// ---- consuming --------------------------------------------------------------------------------

describe('consuming a JetStream stream', () => {
  it('creates the stream and the durable pull consumer, stores each message (type = subject, deliveryId = Nats-Msg-Id or stream:seq), then acknowledges it', async () => {
    const { stream, prefix } = names('consume');
    const h = await hub({ consume: [{ stream, subjects: [`${prefix}.>`] }], ackWaitMs: 5000 });
    // The hub made them: the stream on the configured subjects, the durable with explicit acks.
    expect((await jsm.streams.info(stream)).config.subjects).toEqual([`${prefix}.>`]);
    const consumer = await jsm.consumers.info(stream, 'bus');
    expect(consumer.config).toMatchObject({ durable_name: 'bus', ack_policy: 'explicit', ack_wait: 5000 * 1_000_000, filter_subject: `${prefix}.>`, max_deliver: -1 });

    const a = await send(`${prefix}.order.created`, { order: 1, lines: [{ sku: 'A-1', qty: 2 }] });
    await send(`${prefix}.order.paid`, { order: 1, paid: true }, `paid-${run}`);
    await until(async () => (await events(h.url, 'bus')).length === 2, 'two events stored');
    expect(await events(h.url, 'bus')).toEqual([
      { id: expect.any(String), type: `${prefix}.order.created`, deliveryId: `${stream}:${a.seq}`, payload: { order: 1, lines: [{ sku: 'A-1', qty: 2 }] } },
      { id: expect.any(String), type: `${prefix}.order.paid`, deliveryId: `paid-${run}`, payload: { order: 1, paid: true } },
    ]);
    // Acknowledged: nothing pending or in flight on the server, and the hub's lag says so too.
    await until(async () => {
      const c = await consumerInfo(stream);
      return c.pending === 0 && c.ackPending === 0;
    }, 'both messages acknowledged on the server');
    await until(async () => (await status(h.url)).consumer.lag === 0, 'lag 0');
    expect(await status(h.url)).toEqual({
      type: 'nats',
      healthy: true,
      lastError: null,
      consumer: { connected: true, received: 2, stored: 2, duplicates: 0, redelivered: 0, deadLettered: 0, lag: 0, lastEventAt: expect.any(String) },
    });
    await stopHub(h);
  });

  it('uses an existing stream as it is; a message with the Nats-Msg-Id of one stored before is acknowledged and stored once', async () => {
    const { stream, prefix } = names('dedupe');
    // A stream of the user's own, with a JetStream dedupe window short enough to let a repeat in.
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], duplicate_window: 100_000_000 });
    // … and a durable of its own with other settings: the hub updates it to its own.
    await jsm.consumers.add(stream, { durable_name: 'hub', ack_policy: AckPolicy.Explicit, ack_wait: 60_000_000_000, max_deliver: 10, filter_subject: `${prefix}.a` });
    const h = await hub({ consume: [{ stream, subjects: [`${prefix}.a`], durable: 'hub' }] });
    expect((await jsm.streams.info(stream)).config).toMatchObject({ subjects: [`${prefix}.>`], duplicate_window: 100_000_000 });
    expect((await jsm.consumers.info(stream, 'hub')).config).toMatchObject({ ack_wait: 30_000_000_000, max_deliver: -1, filter_subject: `${prefix}.a` });

    const id = `dup-${run}`;
    await send(`${prefix}.a`, { n: 1 }, id);
    await until(async () => (await events(h.url, 'bus')).length === 1, 'the first stored');
    // Once JetStream's window has passed, the same id is a new stream message: the hub's log dedupes it.
    await until(async () => !(await send(`${prefix}.a`, { n: 2 }, id)).duplicate, 'a repeat JetStream keeps');
    await until(async () => (await status(h.url)).consumer.duplicates === 1, 'the repeat counted as a duplicate');
    expect(await events(h.url, 'bus')).toEqual([{ id: expect.any(String), type: `${prefix}.a`, deliveryId: id, payload: { n: 1 } }]);
    // Not on the filter subject: not consumed.
    await send(`${prefix}.other`, { n: 3 });
    await until(async () => {
      const c = await consumerInfo(stream, 'hub');
      return c.pending === 0 && c.ackPending === 0;
    }, 'the repeat acknowledged');
    expect((await status(h.url)).consumer).toMatchObject({ received: 2, stored: 1, duplicates: 1 });
    await stopHub(h);
  });

  it('a message that is not JSON is redelivered until maxDeliveries, then recorded under bus.dead with the reason and terminated', async () => {
    const { stream, prefix } = names('dead');
    const h = await hub({ consume: [{ stream, subjects: [`${prefix}.>`] }], maxDeliveries: 3, redeliveryDelayMs: 50, ackWaitMs: 2000 });
    const bad = await send(`${prefix}.broken`, 'not json {');
    await send(`${prefix}.fine`, { ok: true });

    await until(async () => (await events(h.url, 'bus.dead')).length === 1, 'the dead letter');
    const [dead] = await events(h.url, 'bus.dead');
    expect(dead).toEqual({
      id: expect.any(String),
      type: `${prefix}.broken`,
      deliveryId: `${stream}:${bad.seq}`,
      payload: {
        reason: expect.stringMatching(/JSON/),
        origin: `stream ${stream}`,
        deliveries: 3,
        type: `${prefix}.broken`,
        deliveryId: `${stream}:${bad.seq}`,
        body: 'not json {',
        encoding: 'utf8',
      },
    });
    // The good message went through; the bad one is not in the source.
    expect((await events(h.url, 'bus')).map((e) => e.type)).toEqual([`${prefix}.fine`]);
    // Terminated: the server holds nothing for the consumer, so it never delivers it again.
    await until(async () => {
      const c = await consumerInfo(stream);
      return c.pending === 0 && c.ackPending === 0;
    }, 'the dead message settled on the server');
    expect((await status(h.url)).consumer).toMatchObject({ received: 4, stored: 1, redelivered: 2, deadLettered: 1 });
    await stopHub(h);
  });

  it('a cut connection shows (unhealthy, consumer disconnected, /readyz 503); the client reconnects and what was published meanwhile is consumed', async () => {
    const { stream, prefix } = names('cut');
    const p = await proxy();
    const h = await hub({ url: `nats://127.0.0.1:${p.port}`, required: true, consume: [{ stream, subjects: [`${prefix}.>`] }] });
    await send(`${prefix}.before`, { n: 0 });
    await until(async () => (await events(h.url, 'bus')).length === 1, 'the first event');
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);

    await p.cut();
    await until(async () => !(await status(h.url)).consumer.connected, 'the consumer shown disconnected');
    const down = await status(h.url);
    expect(down).toMatchObject({ healthy: false, lastError: expect.stringMatching(/connection lost: disconnected from the NATS server 127\.0\.0\.1:\d+/), consumer: { connected: false } });
    const ready = await fetch(`${h.origin}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toContain('bus');

    // Published while the hub cannot hear: kept by JetStream for the durable.
    for (let n = 1; n <= 5; n++) await send(`${prefix}.during`, { n });
    await p.restore();
    await until(async () => (await events(h.url, 'bus')).length === 6, 'the messages of the outage consumed');
    expect((await events(h.url, 'bus')).map((e) => e.payload)).toEqual([0, 1, 2, 3, 4, 5].map((n) => ({ n })));
    // Healthy again; lastError keeps the outage's reason.
    expect(await status(h.url)).toMatchObject({ healthy: true, lastError: expect.stringMatching(/connection lost/), consumer: { connected: true, stored: 6 } });
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
    await stopHub(h);
  });
});

describe('a server out of reach when the hub starts', () => {
  it('the hub serves anyway, shows the connector unhealthy, and connects and consumes once the server is reachable', async () => {
    const { stream, prefix } = names('late');
    const p = await proxy();
    await p.cut();
    const h = await hub({ url: `nats://127.0.0.1:${p.port}`, required: true, consume: [{ stream, subjects: [`${prefix}.>`] }] });
    expect(await status(h.url)).toMatchObject({ healthy: false, lastError: expect.stringMatching(/^connection lost: /), consumer: { connected: false } });
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(503);
    await p.restore();
    await until(async () => (await status(h.url)).consumer.connected, 'connected');
    await until(async () => (await jsm.streams.info(stream).then(() => true, () => false)), 'the stream created');
    await send(`${prefix}.hello`, { hello: true });
    await until(async () => (await events(h.url, 'bus')).length === 1, 'the message consumed');
    expect((await status(h.url)).healthy).toBe(true);
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
    await stopHub(h);
  });
});

describe('a consumer deleted on the server', () => {
  it('shows unhealthy with the reason, is created again by the hub, and consumption resumes', async () => {
    const { stream, prefix } = names('deleted');
    const h = await hub({ consume: [{ stream, subjects: [`${prefix}.>`] }] });
    await send(`${prefix}.one`, { n: 1 });
    await until(async () => (await events(h.url, 'bus')).length === 1, 'the first event');
    await jsm.consumers.delete(stream, 'bus');
    await until(async () => /consumer bus of stream .* not found/.test((await status(h.url)).lastError ?? ''), 'the deletion shown');
    await until(async () => (await jsm.consumers.info(stream, 'bus').then(() => true, () => false)), 'the consumer created again');
    await send(`${prefix}.two`, { n: 2 });
    await until(async () => (await events(h.url, 'bus')).length === 2, 'the message after the deletion consumed');
    await until(async () => (await status(h.url)).healthy, 'healthy again');
    expect((await events(h.url, 'bus')).map((e) => e.payload)).toEqual([{ n: 1 }, { n: 2 }]);
    await stopHub(h);
  });
});

// ---- real processes ---------------------------------------------------------------------------

function projectFiles(connector: Record<string, unknown>): Record<string, string> {
  return {
    'schema/app.graphql': PLAIN_SDL,
    'junction.config.yaml': stringify({ server: { host: '127.0.0.1' }, connectors: { bus: { type: 'nats', ...connector } } }),
  };
}

describe('durability on real `junction serve` processes', () => {
  it('SIGKILL after storing, before the acknowledgement reached the server: redelivered after restart, stored once', async () => {
    const { stream, prefix } = names('sigkill');
    const p = await proxy();
    const dir = processes.temp(projectFiles({ url: `nats://127.0.0.1:${p.port}`, consume: [{ stream, subjects: [`${prefix}.>`] }], ackWaitMs: 1000 }));
    const first = await processes.serve(dir);
    // The hub hears the server, but nothing it sends reaches it any more: its ack included.
    p.freeze();
    const id = `kill-${run}`;
    await send(`${prefix}.order`, { order: 7 }, id);
    await until(async () => (await events(first.url, 'bus')).length === 1, 'the message stored by the first hub');
    expect(await processes.kill(first)).toEqual({ code: null, signal: 'SIGKILL' });
    // Not acknowledged on the server.
    expect((await consumerInfo(stream)).ackPending + (await consumerInfo(stream)).pending).toBe(1);

    await p.restore();
    const second = await processes.serve(dir);
    await until(async () => (await status(second.url)).consumer.duplicates === 1, 'the redelivery recognised as stored');
    expect(await events(second.url, 'bus')).toEqual([{ id: expect.any(String), type: `${prefix}.order`, deliveryId: id, payload: { order: 7 } }]);
    expect((await status(second.url)).consumer).toMatchObject({ stored: 0, duplicates: 1, redelivered: 1 });
    await until(async () => {
      const c = await consumerInfo(stream);
      return c.pending === 0 && c.ackPending === 0;
    }, 'acknowledged by the second hub');
    expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM with messages in flight exits 0; every message is stored or delivered to the next run: all stored, each once', async () => {
    const { stream, prefix } = names('sigterm');
    const dir = processes.temp(projectFiles({ url: NATS, consume: [{ stream, subjects: [`${prefix}.>`] }], ackWaitMs: 1000, prefetch: 50 }));
    const first = await processes.serve(dir);
    const total = 300;
    const sent = Array.from({ length: total }, (_, i) => send(`${prefix}.item`, { i }));
    await Promise.all(sent);
    await until(async () => (await status(first.url)).consumer.stored >= 1, 'the first hub storing');
    expect(await processes.stop(first)).toEqual({ code: 0, signal: null });

    const second = await processes.serve(dir);
    await until(async () => (await events(second.url, 'bus')).length === total, `all ${total} messages stored`);
    const all = await events(second.url, 'bus');
    expect(new Set(all.map((e) => e.deliveryId)).size).toBe(total);
    expect(all.map((e) => (e.payload as { i: number }).i).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    await until(async () => {
      const c = await consumerInfo(stream);
      return c.pending === 0 && c.ackPending === 0;
    }, 'everything acknowledged');
    expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
  });
});

// ---- publishing -------------------------------------------------------------------------------

const wsClients = new Set<Client>();
afterEach(async () => {
  await Promise.all([...wsClients].map((c) => c.dispose()));
  wsClients.clear();
});

function subscribe(wsUrl: string, query: string): { results: FormattedExecutionResult<Record<string, unknown>, unknown>[]; errors: unknown[] } {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  wsClients.add(client);
  const state = { results: [] as FormattedExecutionResult<Record<string, unknown>, unknown>[], errors: [] as unknown[] };
  client.subscribe({ query }, { next: (r) => state.results.push(r), error: (e) => state.errors.push(e), complete: () => {} });
  return state;
}

describe('@publish to JetStream', () => {
  const { stream, prefix } = names('publish');
  const SDL = `
type Query { ok: String }
input OrderInput { sku: String!, qty: Int! }
type Order { sku: String!, qty: Int! }
type Mutation {
  placeOrder(input: OrderInput!, key: String): PublishReceipt! @publish(connector: "bus", to: "${prefix}.orders.placed", idempotencyKey: "{args.key}")
  publishTo(to: String!, input: OrderInput!): PublishReceipt! @publish(connector: "bus", to: "{args.to}")
  publishTwice(key: String!): [String!]!
}
type Subscription {
  orderPlaced(after: ID): Order! @subscribe(source: "bus", types: ["${prefix}.orders.placed"])
}
`;
  // A code resolver calling the connector directly: the key reaches JetStream's own dedupe.
  const RESOLVERS = `
export default {
  Mutation: {
    publishTwice: async (_, { key }, { connectors }) => {
      const one = await connectors.bus.publish({ to: ${JSON.stringify(`${prefix}.direct`)}, body: '{"n":1}', idempotencyKey: key });
      const two = await connectors.bus.publish({ to: ${JSON.stringify(`${prefix}.direct`)}, body: '{"n":2}', idempotencyKey: key });
      return [one.messageId, two.messageId];
    },
  },
};
`;
  let h: TestHub;
  beforeAll(async () => {
    h = await hub({ consume: [{ stream, subjects: [`${prefix}.>`] }] }, SDL, { 'resolvers/app.ts': RESOLVERS });
  });

  const PLACE = 'mutation($input: OrderInput!, $key: String) { placeOrder(input: $input, key: $key) { connector to messageId duplicate } }';

  it('round trip: a mutation publishes, answered with the stream sequence; the hub consumes it and a graphql-ws subscription sees it', async () => {
    const sub = subscribe(h.wsUrl, 'subscription { orderPlaced { sku qty } }');
    // The subscription is registered once an event published after it arrives: publish until one does.
    let receipt: { messageId: string } | undefined;
    await until(async () => {
      const r = await gql(h.url, PLACE, { input: { sku: 'A-1', qty: 2 } });
      expect(r.body.errors).toBeUndefined();
      receipt = (r.body.data as { placeOrder: { messageId: string } }).placeOrder;
      await until(async () => (await events(h.url, 'bus')).some((e) => e.deliveryId === receipt!.messageId), 'the published message consumed');
      return sub.results.length > 0;
    }, 'the subscription to see a published order');
    expect(sub.errors).toEqual([]);
    // The event the subscriber saw is the one stored for the published message (its delivery id is the receipt's messageId).
    const stored = (await events(h.url, 'bus')).find((e) => e.deliveryId === receipt!.messageId)!;
    expect(sub.results.at(-1)).toEqual({ data: { orderPlaced: { sku: 'A-1', qty: 2 } }, extensions: { cursor: stored.id } });
    expect(receipt!.messageId).toMatch(new RegExp(`^${stream}:\\d+$`));
    const seq = Number(receipt!.messageId.split(':')[1]);
    expect(JSON.parse(new TextDecoder().decode((await jsm.streams.getMessage(stream, { seq }))!.data))).toEqual({ sku: 'A-1', qty: 2 });
  });

  it('the same idempotency key twice: one message in the stream, the second answer duplicate: true; the key is the Nats-Msg-Id', async () => {
    const before = (await jsm.streams.info(stream)).state.messages;
    const key = `order-${run}`;
    const first = await gql(h.url, PLACE, { input: { sku: 'K', qty: 1 }, key });
    const again = await gql(h.url, PLACE, { input: { sku: 'K', qty: 1 }, key });
    const receipt = { connector: 'bus', to: `${prefix}.orders.placed`, messageId: expect.stringMatching(new RegExp(`^${stream}:\\d+$`)) };
    expect(first.body).toEqual({ data: { placeOrder: { ...receipt, duplicate: false } } });
    expect(again.body).toEqual({ data: { placeOrder: { ...receipt, messageId: (first.body.data as { placeOrder: { messageId: string } }).placeOrder.messageId, duplicate: true } } });
    expect((await jsm.streams.info(stream)).state.messages).toBe(before + 1);
    await until(async () => (await events(h.url, 'bus')).some((e) => e.deliveryId === key), 'the message consumed under its key');
  });

  it("a code resolver's repeated key is deduplicated by JetStream itself: the original sequence both times", async () => {
    const before = (await jsm.streams.info(stream)).state.messages;
    const r = await gql(h.url, 'mutation($k: String!) { publishTwice(key: $k) }', { k: `direct-${run}` });
    expect(r.body.errors).toBeUndefined();
    const [one, two] = (r.body.data as { publishTwice: string[] }).publishTwice;
    expect(one).toMatch(new RegExp(`^${stream}:\\d+$`));
    expect(two).toBe(one);
    expect((await jsm.streams.info(stream)).state.messages).toBe(before + 1);
  });

  it('a subject no stream captures is UPSTREAM_ERROR, never a receipt', async () => {
    const r = await gql(h.url, 'mutation($to: String!) { publishTo(to: $to, input: { sku: "A", qty: 1 }) { messageId } }', { to: `jx.${run}.nowhere.x` });
    expect(r.body.data).toBeNull();
    expect(r.body.errors?.[0]).toMatchObject({
      message: expect.stringContaining(`no JetStream stream captures subject "jx.${run}.nowhere.x"`),
      extensions: { code: 'UPSTREAM_ERROR', connector: 'bus' },
    });
  });

  it.each([
    ['a wildcard', `${prefix}.*`, /wildcard/],
    ['a full wildcard', `${prefix}.>`, /wildcard/],
    ['an empty subject', '', /empty/],
    ['a space', `${prefix}.a b`, /whitespace/],
    ['an empty token', `${prefix}..x`, /empty token/],
    ['a server subject', '$JS.API.STREAM.DELETE.X', /belong to the server/],
    ['too long a subject', `${prefix}.${'x'.repeat(300)}`, /at most 256/],
  ])('%s in `to` is BAD_USER_INPUT, nothing sent', async (_what, to, reason) => {
    const before = (await jsm.streams.info(stream)).state.messages;
    const r = await gql(h.url, 'mutation($to: String!) { publishTo(to: $to, input: { sku: "A", qty: 1 }) { messageId } }', { to });
    expect(r.body.errors?.[0]).toMatchObject({ message: expect.stringMatching(reason), extensions: { code: 'BAD_USER_INPUT', connector: 'bus' } });
    expect((await jsm.streams.info(stream)).state.messages).toBe(before);
  });

  it('testConnector answers ok while the server and JetStream answer', async () => {
    const r = await gql(h.url, 'mutation { testConnector(name: "bus") { ok error } }');
    expect(r.body).toEqual({ data: { testConnector: { ok: true, error: null } } });
  });
});
