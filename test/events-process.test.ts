// Events across real `junction serve` processes: an acknowledged webhook survives SIGKILL (the
// default SQLite log), and with `eventLog` and `pubsub` on PostgreSQL or Redis two hub processes
// on one config share webhook events (replay with `after` on the other instance included) and
// code resolvers' publishes. Every peer is real: child processes, PostgreSQL, Redis, graphql-ws.
import { createHmac, randomUUID } from 'node:crypto';
import { createClient as createRedisClient } from '@redis/client';
import { type Client, createClient, type FormattedExecutionResult } from 'graphql-ws';
import pino from 'pino';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseConfig } from '../src/config.ts';
import { createPubSub } from '../src/pubsub.ts';
import { gql, ROOT } from './helpers.ts';
import { HubProcesses, type Served } from './processes.ts';

const PG = 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = 'redis://127.0.0.1:6379';
const run = randomUUID().replaceAll('-', '').slice(0, 10);
const SECRET = 'events-process-hmac-secret';

const processes = new HubProcesses();
afterAll(() => processes.cleanup());
const temp = (files: Record<string, string>) => processes.temp(files);
const serve = (cwd: string, env: NodeJS.ProcessEnv = {}) => processes.serve(cwd, { HOOK_SECRET: SECRET, ...env });
const stop = (served: Served) => processes.stop(served);

// ---- webhooks -------------------------------------------------------------------------------

/** The `hmac` scheme as configured below: `X-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
function signed(body: string): Record<string, string> {
  return { 'content-type': 'application/json', 'x-signature': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` };
}

interface Sent {
  body: Record<string, unknown>;
  id: string;
}

let deliveries = 0;
/** POSTs a signed event (`type`, delivery `id`, data) to a hub's webhook connector; expects 202. */
async function post(hub: Served, connector: string, type: string): Promise<Sent> {
  const body = { type, id: `delivery-${run}-${++deliveries}`, n: deliveries, data: { text: `event ${deliveries}` } };
  const text = JSON.stringify(body);
  const res = await fetch(`${hub.origin}/webhooks/${connector}`, { method: 'POST', headers: signed(text), body: text });
  const answer = (await res.json()) as { id: string; duplicate: boolean };
  expect({ status: res.status, duplicate: answer.duplicate }).toEqual({ status: 202, duplicate: false });
  return { body, id: answer.id };
}

const WEBHOOK = (name: string) => ({
  [name]: { type: 'webhook', scheme: 'hmac', secret: '${HOOK_SECRET}', header: 'X-Signature', prefix: 'sha256=' },
});

function yaml(config: Record<string, unknown>): string {
  return JSON.stringify(config, null, 2); // JSON is YAML
}

// ---- graphql-ws -----------------------------------------------------------------------------

interface Subscription {
  results: FormattedExecutionResult<Record<string, unknown>, { cursor?: string }>[];
  errors: unknown[];
  /** Resolves once `count` results have arrived. */
  received(count: number): Promise<void>;
  /** Unsubscribes and closes the connection. */
  close(): Promise<void>;
}

const clients = new Set<Client>();
afterEach(async () => {
  await Promise.all([...clients].map((c) => c.dispose()));
  clients.clear();
});

function subscribe(wsUrl: string, query: string, variables: Record<string, unknown> = {}): Subscription {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  clients.add(client);
  const results: Subscription['results'] = [];
  const errors: unknown[] = [];
  const waiters = new Set<() => void>();
  const unsubscribe = client.subscribe<Record<string, unknown>, { cursor?: string }>(
    { query, variables },
    {
      next: (result) => {
        results.push(result);
        for (const w of waiters) w();
      },
      error: (error) => {
        errors.push(error);
        for (const w of waiters) w();
      },
      complete: () => {},
    },
  );
  return {
    results,
    errors,
    received: (count) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => done(() => reject(new Error(`timed out: ${results.length} of ${count} results\n${JSON.stringify({ results, errors })}`))), 60_000);
        const check = () => {
          if (errors.length > 0) done(() => reject(new Error(`subscription failed: ${JSON.stringify(errors)}`)));
          else if (results.length >= count) done(resolve);
        };
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      }),
    close: async () => {
      unsubscribe();
      await client.dispose();
      clients.delete(client);
    },
  };
}

// ---- 1. SIGKILL right after 202 ---------------------------------------------------------------

describe('durability: SIGKILL right after 202 (default SQLite event log, real process)', () => {
  it('the restarted hub has the acknowledged event, and still knows its delivery id', async () => {
    const dir = temp({
      'schema/app.graphql': 'type Query { ping: String }\n',
      'junction.config.yaml': yaml({ server: { host: '127.0.0.1' }, connectors: WEBHOOK('hooks') }),
    });
    const first = await serve(dir);
    const body = JSON.stringify({ type: 'order.created', id: `order-${run}`, total: 42, lines: [{ sku: 'A-1', qty: 2 }] });

    // The 202's headers and body arrive in one response; the hub is killed the moment they are here.
    const res = await fetch(`${first.origin}/webhooks/hooks`, { method: 'POST', headers: signed(body), body });
    if (res.status === 202) first.child.kill('SIGKILL');
    expect(res.status).toBe(202);
    const answer = (await res.json()) as { id: string; duplicate: boolean };
    expect(answer).toEqual({ id: expect.any(String), duplicate: false });
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const second = await serve(dir);
    const read = await gql(second.url, '{ events(source: "hooks") { edges { node { id source type deliveryId payload } } pageInfo { hasNextPage } } }');
    expect(read.body).toEqual({
      data: {
        events: {
          edges: [{ node: { id: answer.id, source: 'hooks', type: 'order.created', deliveryId: `order-${run}`, payload: JSON.parse(body) } }],
          pageInfo: { hasNextPage: false },
        },
      },
    });
    // The same delivery again: the restarted hub recognises it (200, the first event's id), stores nothing.
    const again = await fetch(`${second.origin}/webhooks/hooks`, { method: 'POST', headers: signed(body), body });
    expect({ status: again.status, body: await again.json() }).toEqual({ status: 200, body: { id: answer.id, duplicate: true } });
    expect(await stop(second)).toEqual({ code: 0, signal: null });
  });
});

// ---- 2. Two instances -----------------------------------------------------------------------

const EVENTS = `subscription Events($source: String!, $after: ID) {
  events(source: $source, after: $after) { id type deliveryId payload }
}`;

/** What a subscriber should see for the events posted, in order. */
const expected = (sent: Sent[]) =>
  sent.map((s) => ({ data: { events: { id: s.id, type: s.body.type, deliveryId: s.body.id, payload: s.body } }, extensions: { cursor: s.id } }));

const ANNOUNCE_TRIGGER = `test.announced.${run}`;

/** A code resolver module: a mutation that publishes on `context.pubsub`, a subscription fed by it. */
const RESOLVERS = `
const TRIGGER = ${JSON.stringify(ANNOUNCE_TRIGGER)};
const INSTANCE = process.env.INSTANCE ?? '?';
export default {
  Query: { ping: () => 'pong' },
  Mutation: {
    announce: async (_: unknown, { text }: { text: string }, { pubsub }: { pubsub: { publish(t: string, p: unknown): Promise<void> } }) => {
      await pubsub.publish(TRIGGER, { announced: { text, from: INSTANCE } });
      return text;
    },
  },
  Subscription: {
    announced: {
      subscribe: (_: unknown, __: unknown, { pubsub }: { pubsub: { asyncIterableIterator(t: string): AsyncIterator<unknown> } }) => pubsub.asyncIterableIterator(TRIGGER),
    },
  },
};
`;

const SDL = `type Query { ping: String }
type Announcement { text: String! from: String! }
type Mutation { announce(text: String!): String! }
type Subscription { announced: Announcement! }
`;

interface Shared {
  /** The URL both `eventLog` and `pubsub` get. */
  url: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
}

const schema = `jx_events_process_${run}`;

function shared(store: 'postgres' | 'redis', source: string): Shared {
  if (store === 'postgres') {
    return {
      url: `${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      async setup() {
        const client = new pg.Client(PG);
        await client.connect();
        await client.query(`CREATE SCHEMA ${schema}`);
        await client.end();
      },
      async teardown() {
        const client = new pg.Client(PG);
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      },
    };
  }
  // The hub's Redis log keys everything by source: a source named for this run is this run's own.
  return {
    url: REDIS,
    async setup() {},
    async teardown() {
      const client = createRedisClient({ url: REDIS });
      await client.connect();
      const keys = [`junction:events:${source}`, ...(await client.keys(`junction:events-dedupe:${source}:*`))];
      await client.del(keys);
      await client.sRem('junction:events-sources', source);
      await client.hDel('junction:events-pruned', source);
      await client.close();
    },
  };
}

describe.each(['postgres', 'redis'] as const)('two hub processes sharing eventLog and pubsub on %s', (store) => {
  // Unique per run, so runs (and the Redis keys of other tests) never meet.
  const source = `hooks_${run}`;
  const peer = shared(store, source);
  let a: Served;
  let b: Served;

  beforeAll(async () => {
    await peer.setup();
    const dir = temp({
      'schema/app.graphql': SDL,
      'resolvers/app.ts': RESOLVERS,
      'junction.config.yaml': yaml({ server: { host: '127.0.0.1' }, eventLog: peer.url, pubsub: peer.url, connectors: WEBHOOK(source) }),
    });
    // Two processes on the same folder and config, each on a port of its own.
    [a, b] = await Promise.all([serve(dir, { INSTANCE: 'A' }), serve(dir, { INSTANCE: 'B' })]);
    expect(a.origin).not.toBe(b.origin);
  });

  afterAll(async () => {
    try {
      for (const hub of [a, b]) if (hub) expect(await stop(hub)).toEqual({ code: 0, signal: null });
    } finally {
      await peer.teardown();
    }
  });

  it('a webhook received by A reaches a subscriber on B, in order; reconnecting to A with `after` gets exactly what it missed, then live', async () => {
    // The subscription starts after a first event: `after` makes its start exact (a live-only
    // subscription starts after whatever is newest when the hub gets to it).
    const opening = await post(a, source, 'opening');
    // The same delivery to the other instance: one shared log, stored once.
    const text = JSON.stringify(opening.body);
    const redelivered = await fetch(`${b.origin}/webhooks/${source}`, { method: 'POST', headers: signed(text), body: text });
    expect({ status: redelivered.status, body: await redelivered.json() }).toEqual({ status: 200, body: { id: opening.id, duplicate: true } });
    const onB = subscribe(b.wsUrl, EVENTS, { source, after: opening.id });
    const live: Sent[] = [];
    for (const type of ['order.created', 'order.paid', 'order.shipped']) live.push(await post(a, source, type));
    await onB.received(3);
    expect(onB.results).toEqual(expected(live));

    // Disconnected, the client misses these …
    await onB.close();
    const missed = [await post(a, source, 'order.refunded'), await post(a, source, 'order.closed')];
    // … and gets them back from the other instance, from its last cursor, then continues live
    // (an event B receives, delivered by A).
    const lastCursor = onB.results.at(-1)!.extensions!.cursor!;
    expect(lastCursor).toBe(live.at(-1)!.id);
    const onA = subscribe(a.wsUrl, EVENTS, { source, after: lastCursor });
    await onA.received(2);
    const later = await post(b, source, 'order.reopened');
    await onA.received(3);
    expect(onA.results).toEqual(expected([...missed, later]));
    expect(onA.errors).toEqual([]);
    await onA.close();

    // Both instances read one log.
    const query = `{ events(source: "${source}") { edges { node { id type } } } }`;
    const all = [opening, ...live, ...missed, later].map((s) => ({ node: { id: s.id, type: s.body.type } }));
    expect((await gql(a.url, query)).body).toEqual({ data: { events: { edges: all } } });
    expect((await gql(b.url, query)).body).toEqual({ data: { events: { edges: all } } });
  });

  it('a code resolver publishing on context.pubsub in A reaches a subscription on B', async () => {
    const onB = subscribe(b.wsUrl, 'subscription { announced { text from } }');
    // Pub/sub keeps nothing for later: publish until B has heard one, then the messages that count.
    for (let attempt = 0; onB.results.length === 0; attempt++) {
      expect(attempt).toBeLessThan(100);
      expect((await gql(a.url, 'mutation { announce(text: "warm-up") }')).body).toEqual({ data: { announce: 'warm-up' } });
      await Promise.race([onB.received(1), new Promise((resolve) => setTimeout(resolve, 500))]);
    }
    const texts = ['one', 'two', 'three'];
    for (const text of texts) expect((await gql(a.url, 'mutation($t: String!) { announce(text: $t) }', { t: text })).body).toEqual({ data: { announce: text } });
    // Every warm-up published reaches B before "one" (one channel, in order).
    await expect.poll(() => onB.results.at(-1)?.data?.announced, { timeout: 60_000 }).toEqual({ text: 'three', from: 'A' });
    const heard = onB.results.filter((r) => (r.data?.announced as { text: string }).text !== 'warm-up');
    expect(heard).toEqual(texts.map((text) => ({ data: { announced: { text, from: 'A' } } })));
    await onB.close();
  });
});

// ---- the shared pub/sub on its own ------------------------------------------------------------

describe('createPubSub on real servers', () => {
  const logger = pino({ level: 'silent' });

  it.each([
    ['postgres', `${PG}?options=${encodeURIComponent(`-c search_path=${schema}_ps`)}`],
    ['redis', REDIS],
  ] as const)('%s: an iterator that returns releases its listener; payloads arrive as JSON', async (store, url) => {
    const setupClient = store === 'postgres' ? new pg.Client(PG) : undefined;
    if (setupClient) {
      await setupClient.connect();
      await setupClient.query(`CREATE SCHEMA ${schema}_ps`);
    }
    const one = createPubSub(url, logger);
    const two = createPubSub(url, logger);
    try {
      await Promise.all([one.start(), two.start()]);
      const topic = `t.${run}`;
      const sentinel = `s.${run}`;
      const heard: unknown[] = [];
      const id = await two.subscribe(topic, (p: unknown) => heard.push(p), {});
      const iterator = two.asyncIterableIterator<{ n: number; at: string }>(topic);
      const next = iterator.next(); // subscribes
      const sentinels: unknown[] = [];
      await two.subscribe(sentinel, (p: unknown) => sentinels.push(p), {});

      await one.publish(topic, { n: 1, at: new Date('2030-01-02T03:04:05Z') });
      expect(await next).toEqual({ done: false, value: { n: 1, at: '2030-01-02T03:04:05.000Z' } });
      expect(heard).toEqual([{ n: 1, at: '2030-01-02T03:04:05.000Z' }]);

      // Released: neither the unsubscribed callback nor the returned iterator hears what follows.
      two.unsubscribe(id);
      expect(await iterator.return!()).toEqual({ done: true, value: undefined });
      await one.publish(topic, { n: 2 });
      await one.publish(sentinel, 'after'); // one channel, in order: once this is here, n: 2 has been dispatched
      await expect.poll(() => sentinels, { timeout: 30_000 }).toEqual(['after']);
      expect(heard).toHaveLength(1);

      if (store === 'postgres') {
        // NOTIFY carries fewer than 8000 bytes: a larger message is refused, saying so.
        await expect(one.publish(topic, { text: 'x'.repeat(8000) })).rejects.toThrow(/is 80\d\d bytes as JSON; PostgreSQL NOTIFY carries fewer than 8000/);
      } else {
        const big = 'x'.repeat(100_000);
        const bigIterator = two.asyncIterableIterator<{ text: string }>(topic);
        const bigNext = bigIterator.next(); // registers at once: `two` already listens
        await one.publish(topic, { text: big });
        expect(await bigNext).toEqual({ done: false, value: { text: big } });
        await bigIterator.return!();
      }
    } finally {
      await Promise.all([one.close(), two.close()]);
      if (setupClient) {
        await setupClient.query(`DROP SCHEMA ${schema}_ps CASCADE`);
        await setupClient.end();
      }
    }
    await expect(one.publish('x', 1)).rejects.toThrow(`pubsub (${store}) is closed`);
  });
});

describe('the pubsub setting', () => {
  const parse = (raw: unknown) => parseConfig(raw, { file: 'junction.config.yaml', baseDir: ROOT, env: {} });

  it('defaults to memory; takes redis(s):// and postgres(ql):// URLs; refuses anything else naming only its scheme', async () => {
    expect((await parse({})).pubsub).toBe('memory');
    for (const url of ['redis://127.0.0.1:6379/2', 'rediss://cache.example:6380', 'postgres://db/x', 'postgresql://u@db/x']) {
      expect((await parse({ pubsub: url })).pubsub).toBe(url);
    }
    const error = await parse({ pubsub: 'amqp://app:hunter2secret@mq/x' }).catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/pubsub: expected "memory", a redis:\/\/ URL or a postgres:\/\/ URL, got a "amqp:" URL/);
    expect(String(error)).not.toContain('hunter2secret');
    expect(String(await parse({ pubsub: 'memroy' }).catch((e: unknown) => e as Error))).toMatch(/pubsub: expected .*, got "memroy"/);
  });
});
