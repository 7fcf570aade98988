import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { type Child, ROOT, spawnNode } from './servers.ts';

/**
 * The brokers step of `npm run bench` (README "Performance"): for each queue connector type
 * (amqp → RabbitMQ, nats → JetStream, mqtt → Mosquitto, redis → Redis Streams), how many
 * messages a second one hub process consumes and stores in its event log (SQLite,
 * synchronous = FULL), and the latency of `@publish` mutations, each answered after the broker's
 * confirmation. Needs the four brokers on their default ports (as the tests do).
 */
export interface BrokerResult {
  type: BrokerType;
  /** Messages waiting in the broker when the hub started; all stored before the clock stops. */
  messages: number;
  /** From the first event stored to the last (their `receivedAt`), seconds. */
  seconds: number;
  /** Stored events per second over that span. */
  perSecond: number;
  /** Sequential `@publish` mutations over HTTP, each answered after the broker confirmed. */
  publish: { count: number; p50: number; p99: number; mean: number };
}

export type BrokerType = 'amqp' | 'nats' | 'mqtt' | 'redis';
export const BROKER_TYPES: readonly BrokerType[] = ['amqp', 'nats', 'mqtt', 'redis'];

export interface BrokerOptions {
  /** Messages preloaded per broker (MQTT: at most 1,000, Mosquitto's default queue per offline session). */
  messages: number;
  /** `@publish` mutations per broker. */
  publishes: number;
  types?: readonly BrokerType[];
  hubRoot?: string;
}

const MOSQUITTO_QUEUE = 1000;
const require = createRequire(import.meta.url);
const run = randomUUID().slice(0, 8);
const names = {
  queue: `bench.${run}`,
  stream: `BENCH_${run.toUpperCase()}`,
  subject: `bench.${run}`,
  topic: `bench/${run}`,
  clientId: `bench-${run}`,
  redisStream: `bench:${run}`,
};

function project(types: readonly BrokerType[]): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'junction-bench-brokers-'));
  mkdirSync(path.join(dir, 'schema'));
  const connectors: Record<string, unknown> = {
    amqp: { type: 'amqp', url: 'amqp://guest:guest@127.0.0.1:5672', prefetch: 200, consume: [{ queue: names.queue }] },
    nats: { type: 'nats', url: 'nats://127.0.0.1:4222', prefetch: 200, consume: [{ stream: names.stream, subjects: [`${names.subject}.>`], durable: 'hub' }] },
    mqtt: { type: 'mqtt', url: 'mqtt://127.0.0.1:1883', clientId: names.clientId, consume: [{ topic: `${names.topic}/#`, qos: 1 }] },
    redis: { type: 'redis', url: 'redis://127.0.0.1:6379', consume: [{ stream: names.redisStream, group: 'hub' }], batch: 100 },
  };
  const to: Record<BrokerType, string> = { amqp: names.queue, nats: `${names.subject}.published`, mqtt: `${names.topic}/published`, redis: names.redisStream };
  const sdl = [
    'type Query { ok: String }',
    'input BenchInput { n: Int! }',
    'type Mutation {',
    ...types.map((t) => `  publish_${t}(input: BenchInput!): PublishReceipt! @publish(connector: "${t}", to: "${to[t]}")`),
    '}',
  ].join('\n');
  writeFileSync(path.join(dir, 'schema', 'bench.graphql'), sdl);
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    connectors: Object.fromEntries(types.map((t) => [t, connectors[t]])),
    eventLog: { url: 'sqlite:.junction/events.db', retention: { maxEvents: 10_000_000 } },
  };
  writeFileSync(path.join(dir, 'junction.config.yaml'), `# Written by bench/brokers.ts.\n${stringify(config)}`);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function startHub(dir: string, hubRoot: string): Promise<Child> {
  return spawnNode('hub (brokers)', [path.join(hubRoot, 'bin/junction.mjs'), 'serve', '--config', path.join(dir, 'junction.config.yaml'), '--port', '0'], (line) => {
    if (!line.startsWith('{')) return undefined;
    try {
      const entry = JSON.parse(line) as { url?: string; msg?: string };
      return entry.url && entry.msg?.includes('serving') ? entry.url : undefined;
    } catch {
      return undefined;
    }
  });
}

async function stored(hub: Child, type: BrokerType): Promise<{ stored: number; connected: boolean }> {
  const res = await fetch(hub.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ hub { connector(name: "${type}") { consumer { stored connected } } } }` }),
  });
  const body = (await res.json()) as { data?: { hub: { connector: { consumer: { stored: number; connected: boolean } } } } };
  return body.data?.hub.connector.consumer ?? { stored: 0, connected: false };
}

/** When the source's first (or last) event was received, epoch ms. */
async function receivedAt(hub: Child, type: BrokerType, which: 'first' | 'last'): Promise<number> {
  const query =
    which === 'first'
      ? `{ events(source: "${type}", first: 1) { edges { node { receivedAt } } } }`
      : `{ hub { connector(name: "${type}") { consumer { lastEventAt } } } }`;
  const res = await fetch(hub.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  const body = (await res.json()) as { data: { events?: { edges: { node: { receivedAt: string } }[] }; hub?: { connector: { consumer: { lastEventAt: string } } } } };
  const at = which === 'first' ? body.data.events?.edges[0]?.node.receivedAt : body.data.hub?.connector.consumer.lastEventAt;
  if (!at) throw new Error(`bench: no ${which} event time for ${type}: ${JSON.stringify(body)}`);
  return Date.parse(at);
}

/** Publishes `count` messages straight to the broker (its own client, confirmed), as another producer would. */
async function preload(type: BrokerType, count: number): Promise<void> {
  const body = (i: number) => JSON.stringify({ n: i, sku: 'A-1', qty: 2, note: 'preloaded by the bench' });
  if (type === 'amqp') {
    const amqp = require('amqplib') as typeof import('amqplib');
    const connection = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
    const channel = await connection.createConfirmChannel();
    for (let i = 0; i < count; i++) channel.sendToQueue(names.queue, Buffer.from(body(i)), { messageId: `m-${i}`, persistent: true });
    await channel.waitForConfirms();
    await connection.close();
  } else if (type === 'nats') {
    const { connect } = require('@nats-io/transport-node') as typeof import('@nats-io/transport-node');
    const { jetstream } = require('@nats-io/jetstream') as typeof import('@nats-io/jetstream');
    const nc = await connect({ servers: '127.0.0.1:4222' });
    const js = jetstream(nc);
    for (let from = 0; from < count; from += 500) {
      const batch = Array.from({ length: Math.min(500, count - from) }, (_, k) => js.publish(`${names.subject}.preloaded`, body(from + k), { msgID: `m-${from + k}` }));
      await Promise.all(batch);
    }
    await nc.drain();
  } else if (type === 'mqtt') {
    const mqtt = require('mqtt') as typeof import('mqtt');
    const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { protocolVersion: 5 });
    for (let from = 0; from < count; from += 100) {
      const batch = Array.from({ length: Math.min(100, count - from) }, (_, k) =>
        client.publishAsync(`${names.topic}/preloaded`, body(from + k), { qos: 1, properties: { userProperties: { 'message-id': `m-${from + k}` } } }),
      );
      await Promise.all(batch);
    }
    await client.endAsync();
  } else {
    const { createClient } = require('@redis/client') as typeof import('@redis/client');
    const client = createClient({ url: 'redis://127.0.0.1:6379' });
    await client.connect();
    for (let from = 0; from < count; from += 500) {
      const multi = client.multi();
      for (let k = from; k < Math.min(count, from + 500); k++) multi.xAdd(names.redisStream, '*', { payload: body(k) });
      await multi.exec();
    }
    await client.close();
  }
}

/** Removes what the run created in the brokers. */
async function cleanup(types: readonly BrokerType[]): Promise<void> {
  const quietly = (work: () => Promise<unknown>) => work().catch(() => undefined);
  if (types.includes('amqp')) {
    await quietly(async () => {
      const amqp = require('amqplib') as typeof import('amqplib');
      const connection = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
      const channel = await connection.createChannel();
      await channel.deleteQueue(names.queue);
      await connection.close();
    });
  }
  if (types.includes('nats')) {
    await quietly(async () => {
      const { connect } = require('@nats-io/transport-node') as typeof import('@nats-io/transport-node');
      const { jetstreamManager } = require('@nats-io/jetstream') as typeof import('@nats-io/jetstream');
      const nc = await connect({ servers: '127.0.0.1:4222' });
      await (await jetstreamManager(nc)).streams.delete(names.stream);
      await nc.close();
    });
  }
  if (types.includes('mqtt')) {
    await quietly(async () => {
      const mqtt = require('mqtt') as typeof import('mqtt');
      // A clean start with expiry 0 ends the hub's persistent session.
      const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: names.clientId, clean: true, protocolVersion: 5, properties: { sessionExpiryInterval: 0 } });
      await client.endAsync();
    });
  }
  if (types.includes('redis')) {
    await quietly(async () => {
      const { createClient } = require('@redis/client') as typeof import('@redis/client');
      const client = createClient({ url: 'redis://127.0.0.1:6379' });
      await client.connect();
      await client.del(names.redisStream);
      await client.close();
    });
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function measureBrokers(options: BrokerOptions): Promise<BrokerResult[]> {
  const types = options.types ?? BROKER_TYPES;
  const hubRoot = options.hubRoot ?? ROOT;
  const { dir, remove } = project(types);
  const results: BrokerResult[] = [];
  try {
    // A first start declares the queue, stream, session and group; the hub then stops, and the
    // messages are preloaded while it is away, so its consumption is measured on a full backlog.
    const first = await startHub(dir, hubRoot);
    for (const type of types) {
      for (let i = 0; !(await stored(first, type)).connected; i++) {
        if (i > 600) throw new Error(`bench: the ${type} connector did not connect (is the broker running?)\n${first.output()}`);
        await sleep(50);
      }
    }
    await first.stop();
    const counts = Object.fromEntries(types.map((t) => [t, t === 'mqtt' ? Math.min(options.messages, MOSQUITTO_QUEUE) : options.messages])) as Record<BrokerType, number>;
    for (const type of types) await preload(type, counts[type]);

    const hub = await startHub(dir, hubRoot);
    try {
      // Every consumer drains its backlog at once; each is timed by the event log's own clock,
      // from its first event's receivedAt to its last's (polling only waits for the end).
      const spans = await Promise.all(
        types.map(async (type) => {
          while ((await stored(hub, type)).stored < counts[type]) await sleep(50);
          const [first, last] = await Promise.all([receivedAt(hub, type, 'first'), receivedAt(hub, type, 'last')]);
          return { type, seconds: (last - first) / 1000, counted: counts[type] - 1 };
        }),
      );
      for (const type of types) {
        const span = spans.find((s) => s.type === type)!;
        const latencies: number[] = [];
        for (let i = 0; i < options.publishes; i++) {
          const started = performance.now();
          const res = await fetch(hub.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: `mutation($n: Int!) { publish_${type}(input: { n: $n }) { messageId } }`, variables: { n: i } }),
          });
          const answer = (await res.json()) as { data?: Record<string, { messageId: string }>; errors?: unknown[] };
          latencies.push(performance.now() - started);
          if (!answer.data?.[`publish_${type}`]?.messageId) throw new Error(`bench: publish_${type} failed: ${JSON.stringify(answer)}`);
        }
        latencies.sort((a, b) => a - b);
        const round = (ms: number) => Math.round(ms * 100) / 100;
        results.push({
          type,
          messages: counts[type],
          seconds: round(span.seconds),
          // Between the first event and the last, counts[type] - 1 more were stored.
          perSecond: span.seconds > 0 ? Math.round(span.counted / span.seconds) : 0,
          publish: {
            count: latencies.length,
            p50: round(percentile(latencies, 50)),
            p99: round(percentile(latencies, 99)),
            mean: round(latencies.reduce((a, b) => a + b, 0) / latencies.length),
          },
        });
      }
    } finally {
      await hub.stop();
    }
  } finally {
    await cleanup(types);
    remove();
  }
  return results;
}

/** The report's table. */
export function brokersMarkdown(results: readonly BrokerResult[]): string {
  const lines = [
    '| broker | messages | consumed and stored / s | @publish p50 ms | @publish p99 ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.type} | ${r.messages.toLocaleString('en-US')} | ${r.perSecond.toLocaleString('en-US')} | ${r.publish.p50} | ${r.publish.p99} |`),
  ];
  return lines.join('\n');
}
