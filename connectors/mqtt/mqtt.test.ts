// `type: mqtt` end to end against the real Mosquitto on 127.0.0.1:1883 (MQTT 5 and 3.1.1):
// consuming into the event log (type, delivery id, dead letters, duplicates), the persistent
// session that keeps messages while the hub is away, a connection cut with a TCP proxy (health,
// /readyz, nothing lost), PUBACK only after storing (a log that cannot store; SIGKILL between
// storing and acknowledging on a real `junction serve`), SIGTERM with messages in flight, and
// `@publish` round trips seen by a graphql-ws subscription. Topics and client ids are unique per
// run; the sessions made are removed at the end.
import { randomUUID } from 'node:crypto';
import { type Client, createClient, type FormattedExecutionResult } from 'graphql-ws';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { consumerStatus, gql, storedEvents, SPAWN_TIMEOUT_MS, startHub, type TestHub, until } from '../../test/helpers.ts';
import type { ConsumerStats } from '../../src/index.ts';
import { HubProcesses } from '../../test/processes.ts';
import { startTcpProxy, type TcpProxy } from '../../test/tcp-proxy.ts';

const BROKER = 'mqtt://127.0.0.1:1883';
const run = randomUUID().slice(0, 8);
/** A topic of this run: `junction-test/<run>/<name>`. */
const topic = (name: string) => `junction-test/${run}/${name}`;
const sessions = new Set<string>();
/** A client id of this run; its persistent session is removed after the tests. */
const clientId = (name: string) => {
  const id = `junction-test-${run}-${name}`;
  sessions.add(id);
  return id;
};

// ---- a plain MQTT client, the outside world -------------------------------------------------

const peers = new Set<MqttClient>();
async function peer(protocolVersion: 4 | 5 = 5): Promise<MqttClient> {
  const client = await mqtt.connectAsync(BROKER, { clientId: `junction-test-peer-${randomUUID().slice(0, 8)}`, protocolVersion, reconnectPeriod: 0 });
  peers.add(client);
  return client;
}

/** Publishes at QoS 1 (PUBACK awaited), with the message-id property when `id` is given. */
async function send(client: MqttClient, to: string, body: string | Buffer, id?: string): Promise<void> {
  await client.publishAsync(to, body, { qos: 1, ...(id !== undefined && { properties: { userProperties: { 'message-id': id } } }) });
}

/** What a plain subscriber receives on `filter`. */
async function listen(filter: string): Promise<IPublishPacket[]> {
  const client = await peer();
  const received: IPublishPacket[] = [];
  client.on('message', (_t, _p, packet) => received.push(packet));
  await client.subscribeAsync(filter, { qos: 1 });
  return received;
}

afterAll(async () => {
  await Promise.all([...peers].map((c) => c.endAsync(true)));
  // Removes every persistent session made by this run (a clean start with session expiry 0).
  for (const id of sessions) {
    const client = await mqtt.connectAsync(BROKER, { clientId: id, clean: true, protocolVersion: 5, properties: { sessionExpiryInterval: 0 }, reconnectPeriod: 0 });
    await client.endAsync();
  }
});

// ---- the hub ----------------------------------------------------------------------------------

const SDL = `
type Query { ok: String }
input ReadingInput { sensor: String!, value: Float! }
type Reading { sensor: String!, value: Float! }
type Mutation {
  record(input: ReadingInput!, room: String!, key: String): PublishReceipt! @publish(connector: "plant", to: "${topic('readings')}/{args.room}", idempotencyKey: "{args.key}")
}
type Subscription {
  readings(after: ID): Reading! @subscribe(source: "plant")
}
`;

const status = (url: string, name = 'plant') => consumerStatus(url, name);

/** The source's events without their ids (the tests compare what was stored, not the cursors). */
const events = async (url: string, source = 'plant') => (await storedEvents(url, source)).map(({ id: _id, ...event }) => event);

function plant(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'mqtt', url: BROKER, reconnectDelayMs: 100, maxReconnectDelayMs: 500, ...extra };
}

// ---- graphql-ws ---------------------------------------------------------------------------------

const wsClients = new Set<Client>();
afterEach(async () => {
  await Promise.all([...wsClients].map((c) => c.dispose()));
  wsClients.clear();
});

function subscribe(wsUrl: string, query: string): { results: FormattedExecutionResult[]; started: Promise<void> } {
  const results: FormattedExecutionResult[] = [];
  let started!: () => void;
  const startedPromise = new Promise<void>((r) => (started = r));
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, on: { connected: () => started() } });
  wsClients.add(client);
  client.subscribe({ query }, { next: (r) => void results.push(r as FormattedExecutionResult), error: (e) => void results.push({ errors: [{ message: String(e) }] } as FormattedExecutionResult), complete: () => {} });
  return { results, started: startedPromise };
}

// ---- config -------------------------------------------------------------------------------------

describe('mqtt config', () => {
  const parse = (connector: Record<string, unknown>) =>
    parseConfig({ connectors: { plant: { type: 'mqtt', ...connector } } }, { file: 'junction.config.yaml', baseDir: '/tmp', env: {} });
  async function problems(connector: Record<string, unknown>): Promise<string[]> {
    const error = await parse(connector).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }

  it('applies the defaults', async () => {
    const config = await parse({ url: BROKER, clientId: 'hub-1', consume: [{ topic: 'sensors/#' }] });
    expect(config.connectors.plant).toMatchObject({
      consume: [{ topic: 'sensors/#', qos: 1 }],
      protocolVersion: 5,
      sessionExpirySec: 604_800,
      keepaliveSec: 30,
      reconnectDelayMs: 1000,
      maxReconnectDelayMs: 30_000,
      maxDeliveries: 5,
    });
  });

  it('refuses consuming without a client id, QoS 0 and 2, bad topic filters and other URLs', async () => {
    expect(await problems({ url: BROKER, consume: [{ topic: 'a/b' }] })).toEqual([expect.stringMatching(/^connectors\.plant\.clientId: expected a client id with consume/)]);
    const bad = await problems({
      url: 'amqp://127.0.0.1',
      clientId: 'x',
      consume: [{ topic: 'a/#/b' }, { topic: 'a/b+', qos: 1 }, { topic: 'ok', qos: 0 }, { topic: 'ok2', qos: 2 }, { topic: '$share//x' }],
    });
    expect(bad).toEqual([
      expect.stringMatching(/^connectors\.plant\.url: expected an mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\/ URL, got a "amqp:" URL/),
      expect.stringMatching(/^connectors\.plant\.consume\.0\.topic: expected a topic filter with # only as the whole last level/),
      expect.stringMatching(/^connectors\.plant\.consume\.1\.topic: expected a topic filter with \+ only as a whole level/),
      expect.stringMatching(/^connectors\.plant\.consume\.2\.qos: expected 1 \(at-least-once/),
      expect.stringMatching(/^connectors\.plant\.consume\.3\.qos: expected 1 \(at-least-once/),
      expect.stringMatching(/^connectors\.plant\.consume\.4\.topic: expected a shared subscription/),
    ]);
    expect(await problems({ url: BROKER, protocolVersion: 3 })).toEqual([expect.stringMatching(/^connectors\.plant\.protocolVersion: expected 5 \(MQTT 5\.0\) or 4/)]);
  });

  it('never names the URL password in a problem', async () => {
    const found = await problems({ url: 'mqtt://user:hunter2-secret@127.0.0.1/path', clientId: 'x', headers: { a: 'b' } });
    expect(found.join('\n')).not.toContain('hunter2');
    expect(found).toEqual([expect.stringMatching(/^connectors\.plant\.url: .*no path or query/), expect.stringMatching(/^connectors\.plant\.headers: does not apply/)]);
  });
});

// ---- consuming ------------------------------------------------------------------------------------

describe('consuming into the event log (MQTT 5)', () => {
  let h: TestHub;
  let out: MqttClient;
  beforeAll(async () => {
    h = await startHub({ 'schema/app.graphql': SDL }, { connectors: { plant: plant({ clientId: clientId('consume'), consume: [{ topic: topic('readings/#') }] }) } });
    out = await peer();
  });
  afterAll(() => h?.stop());

  it('stores each QoS 1 message once stored: type = topic, deliveryId = the message-id property, the JSON payload', async () => {
    await send(out, topic('readings/kitchen'), JSON.stringify({ sensor: 't1', value: 21.5 }), `reading-${run}-1`);
    await send(out, topic('readings/hall'), JSON.stringify({ sensor: 't2', value: 19 }), `reading-${run}-2`);
    await until(async () => (await events(h.url)).length >= 2, 'two events stored');
    expect(await events(h.url)).toEqual([
      { type: topic('readings/kitchen'), deliveryId: `reading-${run}-1`, payload: { sensor: 't1', value: 21.5 } },
      { type: topic('readings/hall'), deliveryId: `reading-${run}-2`, payload: { sensor: 't2', value: 19 } },
    ]);
    const s = await status(h.url);
    expect(s).toMatchObject({ healthy: true, lastError: null, consumer: { connected: true, received: 2, stored: 2, duplicates: 0, deadLettered: 0, lag: null } });
  });

  it('stores a repeated message-id once (counted as a duplicate); messages without one each get their own id', async () => {
    const before = await status(h.url);
    await send(out, topic('readings/kitchen'), JSON.stringify({ sensor: 't1', value: 21.5 }), `reading-${run}-1`);
    await send(out, topic('readings/cellar'), JSON.stringify({ sensor: 't3', value: 12 }));
    await send(out, topic('readings/cellar'), JSON.stringify({ sensor: 't3', value: 12 }));
    await until(async () => (await status(h.url)).consumer.received >= before.consumer.received + 3, 'three more messages received');
    const s = await status(h.url);
    expect(s.consumer).toMatchObject({ stored: before.consumer.stored + 2, duplicates: before.consumer.duplicates + 1 });
    const all = await events(h.url);
    expect(all.filter((e) => e.deliveryId === `reading-${run}-1`)).toHaveLength(1);
    const cellar = all.filter((e) => e.type === topic('readings/cellar'));
    expect(cellar).toHaveLength(2);
    expect(cellar[0]!.deliveryId).not.toBe(cellar[1]!.deliveryId);
  });

  it('records a message that is not JSON under plant.dead with the reason, at once (MQTT cannot redeliver on request)', async () => {
    const before = await status(h.url);
    await send(out, topic('readings/broken'), 'temperature=21', `broken-${run}`);
    await send(out, topic('readings/binary'), Buffer.from([0xff, 0xfe, 0x00]), `binary-${run}`);
    await until(async () => (await events(h.url, 'plant.dead')).length >= 2, 'two dead letters');
    const dead = await events(h.url, 'plant.dead');
    expect(dead).toEqual([
      {
        type: topic('readings/broken'),
        deliveryId: `broken-${run}`,
        payload: expect.objectContaining({ reason: 'the body is not valid JSON', origin: `topic ${topic('readings/broken')}`, deliveries: null, body: 'temperature=21', encoding: 'utf8' }),
      },
      {
        type: topic('readings/binary'),
        deliveryId: `binary-${run}`,
        payload: expect.objectContaining({ reason: 'the body is not valid UTF-8', body: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), encoding: 'base64' }),
      },
    ]);
    expect((await status(h.url)).consumer.deadLettered).toBe(before.consumer.deadLettered + 2);
    expect((await events(h.url)).some((e) => e.deliveryId === `broken-${run}` || e.deliveryId === `binary-${run}`)).toBe(false);
  });
});

// ---- publishing ---------------------------------------------------------------------------------------

describe('@publish (MQTT 5)', () => {
  let h: TestHub;
  beforeAll(async () => {
    h = await startHub({ 'schema/app.graphql': SDL }, { connectors: { plant: plant({ clientId: clientId('publish'), consume: [{ topic: topic('readings/#') }] }) } });
  });
  afterAll(() => h?.stop());

  const RECORD = `mutation($input: ReadingInput!, $room: String!, $key: String) {
    record(input: $input, room: $room, key: $key) { connector to messageId duplicate }
  }`;

  it('round trip: the mutation answers on the PUBACK, the hub consumes the message, a graphql-ws subscription sees it', async () => {
    const sub = subscribe(h.wsUrl, 'subscription { readings { sensor value } }');
    await sub.started;
    const outside = await listen(topic('readings/#'));
    // The subscription is registered once the server has it; a published reading may race it, so retry until seen.
    let receipt: Record<string, unknown> | undefined;
    await until(async () => {
      const r = await gql(h.url, RECORD, { input: { sensor: 'p1', value: 7.5 }, room: 'lab' });
      expect(r.body.errors).toBeUndefined();
      receipt = r.body.data!.record as Record<string, unknown>;
      await new Promise((resolve) => setTimeout(resolve, 200));
      return sub.results.length > 0;
    }, 'the subscription to see a published reading', 100);
    expect(receipt).toEqual({ connector: 'plant', to: topic('readings/lab'), messageId: expect.stringMatching(/^[0-9a-f-]{36}$/), duplicate: false });
    expect(sub.results[0]).toEqual({ data: { readings: { sensor: 'p1', value: 7.5 } }, extensions: { cursor: expect.any(String) } });
    // What the broker carried: the JSON input, the message-id property, the content type.
    await until(() => outside.some((p) => p.properties?.userProperties?.['message-id'] === receipt!.messageId), 'the plain subscriber to get it');
    const packet = outside.find((p) => p.properties?.userProperties?.['message-id'] === receipt!.messageId)!;
    expect({ topic: packet.topic, body: JSON.parse(packet.payload.toString()), contentType: packet.properties?.contentType }).toEqual({
      topic: topic('readings/lab'),
      body: { sensor: 'p1', value: 7.5 },
      contentType: 'application/json',
    });
    const stored = (await events(h.url)).find((e) => e.deliveryId === receipt!.messageId);
    expect(stored).toEqual({ type: topic('readings/lab'), deliveryId: receipt!.messageId, payload: { sensor: 'p1', value: 7.5 } });
  });

  it('the same idempotencyKey twice publishes one message and answers duplicate: true with the first receipt', async () => {
    const outside = await listen(topic('readings/vault'));
    const key = `key-${run}`;
    const first = await gql(h.url, RECORD, { input: { sensor: 'v', value: 1 }, room: 'vault', key });
    const second = await gql(h.url, RECORD, { input: { sensor: 'v', value: 1 }, room: 'vault', key });
    expect(first.body.data!.record).toEqual({ connector: 'plant', to: topic('readings/vault'), messageId: key, duplicate: false });
    expect(second.body.data!.record).toEqual({ connector: 'plant', to: topic('readings/vault'), messageId: key, duplicate: true });
    await until(async () => (await events(h.url)).some((e) => e.deliveryId === key), 'the hub to consume it');
    // A marker after it: once the marker is here, the plain subscriber has everything before it.
    await gql(h.url, RECORD, { input: { sensor: 'marker', value: 0 }, room: 'vault' });
    await until(() => outside.length >= 2, 'the marker');
    expect(outside.map((p) => p.properties?.userProperties?.['message-id'])).toEqual([key, expect.any(String)]);
    expect((await events(h.url)).filter((e) => e.deliveryId === key)).toHaveLength(1);
  });

  it('a publish the broker refuses (it closes the connection: 300 topic levels, over its limit) is UPSTREAM_ERROR, never sent again; consuming goes on', async () => {
    const outside = await listen(topic('readings/#'));
    const r = await gql(h.url, RECORD, { input: { sensor: 'deep', value: 0 }, room: `${'x/'.repeat(300)}y` });
    expect(r.body.data).toBeNull();
    expect(r.body.errors?.[0]).toMatchObject({ extensions: { code: 'UPSTREAM_ERROR', connector: 'plant' } });
    expect(r.body.errors?.[0]?.message).toMatch(/closed before it confirmed the message \(the broker closed the connection: Protocol Error\)/);
    await until(async () => (await status(h.url)).consumer.connected, 'the connector to reconnect');
    const next = await gql(h.url, RECORD, { input: { sensor: 'after', value: 1 }, room: 'after' });
    expect(next.body.errors).toBeUndefined();
    const id = (next.body.data!.record as { messageId: string }).messageId;
    await until(async () => (await events(h.url)).some((e) => e.deliveryId === id), 'the next reading to be consumed');
    await until(() => outside.length >= 1, 'the plain subscriber');
    expect(outside.map((p) => p.topic)).toEqual([topic('readings/after')]);
  });

  it('refuses a topic with a wildcard or an empty level with BAD_USER_INPUT before sending', async () => {
    const outside = await listen(topic('readings/#'));
    const failuresBefore = await gql(h.url, '{ hub { connector(name: "plant") { failures } } }');
    for (const [room, words] of [
      ['+', /no wildcard/],
      ['#', /no wildcard/],
      ['', /no empty level/],
    ] as const) {
      const r = await gql(h.url, RECORD, { input: { sensor: 'x', value: 0 }, room });
      expect(r.body.data).toBeNull();
      expect(r.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', connector: 'plant' } });
      expect(r.body.errors?.[0]?.message).toMatch(words);
    }
    // Not a failure of the broker: the connector's failure count is untouched.
    const failures = await gql(h.url, '{ hub { connector(name: "plant") { failures } } }');
    expect(failures.body.data).toEqual(failuresBefore.body.data);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(outside).toEqual([]);
  });
});

// ---- the persistent session ---------------------------------------------------------------------------

describe('the persistent session', () => {
  it('delivers the messages published while the hub was down when it comes back (same clientId)', async () => {
    const id = clientId('session');
    const config = { connectors: { plant: plant({ clientId: id, consume: [{ topic: topic('away/+') }] }) } };
    const first = await startHub({ 'schema/app.graphql': SDL }, config);
    await first.stop();
    const out = await peer();
    for (let i = 1; i <= 3; i++) await send(out, topic(`away/${i}`), JSON.stringify({ i }), `away-${run}-${i}`);
    const second = await startHub({ 'schema/app.graphql': SDL }, config);
    try {
      await until(async () => (await events(second.url)).length >= 3, 'the queued messages');
      expect((await events(second.url)).map((e) => [e.type, e.deliveryId, e.payload])).toEqual([1, 2, 3].map((i) => [topic(`away/${i}`), `away-${run}-${i}`, { i }]));
    } finally {
      await second.stop();
    }
  });

  it('MQTT 3.1.1: consumed too, each message with a delivery id of its own (no properties in 3.1.1)', async () => {
    const id = clientId('v4');
    const h = await startHub({ 'schema/app.graphql': SDL }, { connectors: { plant: plant({ clientId: id, protocolVersion: 4, consume: [{ topic: topic('v4/#') }] }) } });
    try {
      const out = await peer(4);
      await out.publishAsync(topic('v4/a'), JSON.stringify({ v: 4 }), { qos: 1 });
      await out.publishAsync(topic('v4/a'), JSON.stringify({ v: 4 }), { qos: 1 });
      await until(async () => (await events(h.url)).length >= 2, 'two events');
      const stored = await events(h.url);
      expect(stored.map((e) => [e.type, e.payload])).toEqual([
        [topic('v4/a'), { v: 4 }],
        [topic('v4/a'), { v: 4 }],
      ]);
      expect(stored[0]!.deliveryId).not.toBe(stored[1]!.deliveryId);
    } finally {
      await h.stop();
    }
  });
});

// ---- a cut connection ------------------------------------------------------------------------------------

describe('a cut broker connection (TCP proxy)', () => {
  let proxy: TcpProxy;
  let h: TestHub;
  beforeAll(async () => {
    proxy = await startTcpProxy(1883);
    h = await startHub(
      { 'schema/app.graphql': SDL },
      { connectors: { plant: plant({ url: `mqtt://127.0.0.1:${proxy.port}`, required: true, clientId: clientId('cut'), consume: [{ topic: topic('cut/#') }] }) } },
    );
  });
  afterAll(async () => {
    await h?.stop();
    await proxy?.close();
  });

  it('shows the outage (unhealthy, consumer.connected false, /readyz 503), reconnects, and consumes what was published meanwhile', async () => {
    const out = await peer();
    await send(out, topic('cut/before'), '{"n":0}', `cut-${run}-0`);
    await until(async () => (await events(h.url)).length === 1, 'the first message');
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);

    await proxy.cut();
    await until(async () => !(await status(h.url)).consumer.connected, 'the connector to notice');
    const down = await status(h.url);
    expect(down).toMatchObject({ healthy: false, lastError: expect.stringMatching(/^connection lost: /), consumer: { connected: false } });
    const ready = await fetch(`${h.origin}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', connectors: [{ name: 'plant', healthy: false }] });

    for (let i = 1; i <= 3; i++) await send(out, topic(`cut/during`), JSON.stringify({ n: i }), `cut-${run}-${i}`);
    await proxy.restore();
    await until(async () => (await events(h.url)).length === 4, 'the messages published during the outage');
    expect((await events(h.url)).map((e) => e.deliveryId)).toEqual([0, 1, 2, 3].map((i) => `cut-${run}-${i}`));
    await until(async () => (await status(h.url)).consumer.connected, 'the connection to be reported back');
    // lastError keeps the last error (the outage), as for every connector; healthy says it is over.
    expect(await status(h.url)).toMatchObject({ healthy: true, consumer: { connected: true, stored: 4 } });
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
  });

  it('a publish while disconnected fails with UPSTREAM_ERROR at once and is never sent later', async () => {
    const outside = await listen(topic('readings/#'));
    await proxy.cut();
    await until(async () => !(await status(h.url)).consumer.connected, 'the connector to notice');
    const r = await gql(h.url, `mutation { record(input: { sensor: "off", value: 0 }, room: "offline") { messageId } }`);
    expect(r.body.errors?.[0]).toMatchObject({ extensions: { code: 'UPSTREAM_ERROR', connector: 'plant' } });
    expect(r.body.errors?.[0]?.message).toMatch(/not connected to the MQTT broker/);
    await proxy.restore();
    await until(async () => (await status(h.url)).consumer.connected, 'the connection to come back');
    // A marker through the same connection: once it is here, anything queued before would be too.
    const marker = await gql(h.url, `mutation { record(input: { sensor: "marker", value: 1 }, room: "online") { messageId } }`);
    expect(marker.body.errors).toBeUndefined();
    await until(() => outside.length >= 1, 'the marker');
    expect(outside.map((p) => p.topic)).toEqual([topic('readings/online')]);
  });
});

// ---- PUBACK only after storing -----------------------------------------------------------------------------

describe('the PUBACK waits for the event log', () => {
  it('a message the log cannot store yet stays unacknowledged: after a reconnect the broker redelivers it, and it is stored once', async () => {
    const mqttProxy = await startTcpProxy(1883);
    const logProxy = await startTcpProxy(6379);
    const h = await startHub(
      { 'schema/app.graphql': SDL },
      {
        eventLog: `redis://127.0.0.1:${logProxy.port}/0`,
        connectors: { plant: plant({ url: `mqtt://127.0.0.1:${mqttProxy.port}`, timeoutMs: 1000, breaker: { resetTimeoutMs: 500 }, clientId: clientId('logdown'), consume: [{ topic: topic('logdown/#') }] }) },
      },
    );
    try {
      const id = `logdown-${run}`;
      await logProxy.cut();
      const out = await peer();
      await send(out, topic('logdown/a'), '{"held":true}', id);
      await until(async () => (await statusOf(h)).received >= 1, 'the message to arrive');
      // Not stored, so not acknowledged: cutting the connection makes the broker hand it over again.
      await mqttProxy.cut();
      await until(async () => !(await statusOf(h)).connected, 'the cut to be noticed');
      await mqttProxy.restore();
      await until(async () => (await statusOf(h)).redelivered >= 1, 'the broker to redeliver it (DUP)');
      await logProxy.restore();
      await until(async () => (await statusOf(h)).stored === 1, 'it to be stored');
      await until(async () => (await statusOf(h)).duplicates + (await statusOf(h)).stored >= 2, 'both deliveries to settle');
      const stored = (await events(h.url)).filter((e) => e.deliveryId === id);
      expect(stored).toEqual([{ type: topic('logdown/a'), deliveryId: id, payload: { held: true } }]);
    } finally {
      await logProxy.restore();
      await h.stop();
      await mqttProxy.close();
      await logProxy.close();
    }
  });
});

async function statusOf(h: TestHub): Promise<ConsumerStats> {
  return (await status(h.url)).consumer;
}

// ---- real processes ---------------------------------------------------------------------------------------------

describe('a real `junction serve` process', () => {
  const processes = new HubProcesses();
  afterAll(() => processes.cleanup());

  function projectDir(url: string, id: string, filter: string): string {
    const config = { server: { host: '127.0.0.1' }, connectors: { plant: plant({ url, clientId: id, consume: [{ topic: filter }] }) } };
    return processes.temp({ 'schema/app.graphql': SDL, 'junction.config.yaml': JSON.stringify(config, null, 2) });
  }

  it(
    'SIGKILL between storing and acknowledging: after restart the broker redelivers it, and it is stored once',
    async () => {
      const proxy = await startTcpProxy(1883);
      try {
        const dir = projectDir(`mqtt://127.0.0.1:${proxy.port}`, clientId('sigkill'), topic('kill/#'));
        const first = await processes.serve(dir);
        await until(async () => (await status(first.url)).consumer.connected, 'the first hub to connect');
        proxy.freeze(); // the hub's PUBACK never reaches the broker
        const id = `kill-${run}`;
        await send(await peer(), topic('kill/a'), '{"order":1}', id);
        await until(async () => (await events(first.url)).length === 1, 'the first hub to store it');
        expect(await processes.kill(first)).toEqual({ code: null, signal: 'SIGKILL' });
        await proxy.restore();

        const second = await processes.serve(dir);
        await until(async () => (await status(second.url)).consumer.duplicates === 1, 'the redelivery to be counted as a duplicate');
        const s = await status(second.url);
        expect(s.consumer).toMatchObject({ connected: true, received: 1, stored: 0, duplicates: 1, redelivered: 1 });
        expect(await events(second.url)).toEqual([{ type: topic('kill/a'), deliveryId: id, payload: { order: 1 } }]);
        expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
      } finally {
        await proxy.close();
      }
    },
    SPAWN_TIMEOUT_MS * 3,
  );

  it(
    'SIGTERM with messages in flight exits 0; after restart every message is stored exactly once',
    async () => {
      const dir = projectDir(BROKER, clientId('sigterm'), topic('term/#'));
      const first = await processes.serve(dir);
      await until(async () => (await status(first.url)).consumer.connected, 'the hub to connect');
      const out = await peer();
      const count = 600;
      const ids = Array.from({ length: count }, (_, i) => `term-${run}-${i}`);
      // Published without waiting for each PUBACK: they arrive while the hub is stopping.
      const published = Promise.all(ids.map((id, i) => send(out, topic(`term/${i % 3}`), JSON.stringify({ i }), id)));
      await until(async () => (await status(first.url)).consumer.received > 0, 'the first messages to arrive', 4000);
      const stopped = await processes.stop(first);
      expect(stopped).toEqual({ code: 0, signal: null });
      await published;

      const second = await processes.serve(dir);
      await until(async () => new Set((await events(second.url)).map((e) => e.deliveryId)).size === count, `all ${count} messages`, 4000);
      const stored = await events(second.url);
      expect(stored.map((e) => e.deliveryId).sort()).toEqual([...ids].sort());
      expect(stored.every((e) => (e.payload as { i: number }).i === ids.indexOf(e.deliveryId))).toBe(true);
      expect(await processes.stop(second)).toEqual({ code: 0, signal: null });
    },
    SPAWN_TIMEOUT_MS * 3,
  );
});
