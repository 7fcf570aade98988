// The event log over GraphQL (SPEC §6): the replay-then-live stream, Query.events,
// Subscription.events, @subscribe fields, fan-out dedupe and the slow-consumer limit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Client, createClient, type FormattedExecutionResult } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { EventLog, StoredEvent } from '../connectors/runtime/contract.ts';
import { createEventLog } from '../src/events/index.ts';
import { EventStream } from '../src/events/subscriptions.ts';
import { gql, startHub, type TestHub, until } from './helpers.ts';

async function take(stream: AsyncIterator<StoredEvent>, n: number): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  while (out.length < n) {
    const r = await stream.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe('the replay-then-live stream over the real SQLite log', () => {
  let dir: string;
  let log: EventLog & { prune(source?: string): Promise<void> };
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'junction-events-'));
    log = createEventLog({ url: 'sqlite:events.db', retention: { maxEvents: 1000 } }, dir, { pruneEvery: 1_000_000, pruneIntervalMs: 0 });
  });
  afterAll(async () => {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const append = (source: string, type: string, n: number, from = 0) =>
    (async () => {
      const out: StoredEvent[] = [];
      for (let i = from; i < from + n; i++) out.push((await log.append({ source, type, deliveryId: `${type}-${i}`, payload: { i } })).event);
      return out;
    })();

  it('replays from a cursor in pages, then delivers new events as they are stored, each once', async () => {
    const stored = await append('s1', 'push', 25);
    const stream = new EventStream(log, { source: 's1', after: stored[4]!.id, pageSize: 7 });
    const replayed = await take(stream, 20);
    expect(replayed.map((e) => e.id)).toEqual(stored.slice(5).map((e) => e.id));
    // Caught up: the next call waits for a wake-up, then reads from the last delivered id.
    const pending = take(stream, 3);
    const live = await append('s1', 'push', 3, 25);
    expect((await pending).map((e) => e.id)).toEqual(live.map((e) => e.id));
    expect(stream.cursor).toBe(live[2]!.id);
    await stream.return();
  });

  it('filters by type and, without a cursor, starts after the newest event', async () => {
    await append('s2', 'push', 3);
    const stream = new EventStream(log, { source: 's2', types: ['issues'] });
    const pending = take(stream, 2);
    // The stream finds its start (the newest event) on the first next(); append once it has.
    await until(() => stream.cursor !== undefined, 'the stream to start');
    await append('s2', 'push', 2, 10);
    const issues = await append('s2', 'issues', 2);
    expect((await pending).map((e) => [e.type, e.id])).toEqual(issues.map((e) => ['issues', e.id]));
    await stream.return();
  });

  it('return() ends a stream waiting for events, and removes its watch', async () => {
    let watching = 0;
    const counted: EventLog = {
      ...log,
      append: (e) => log.append(e),
      read: (q) => log.read(q),
      sources: () => log.sources(),
      close: () => Promise.resolve(),
      watch: (source, listener) => {
        watching++;
        const stop = log.watch(source, listener);
        return () => {
          watching--;
          stop();
        };
      },
    };
    const stream = new EventStream(counted, { source: 's3', after: '0' });
    expect(watching).toBe(1);
    const waiting = stream.next();
    await new Promise((r) => setTimeout(r, 50));
    await stream.return();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(watching).toBe(0);
  });

  it('ends with CURSOR_EXPIRED when the cursor is older than the retention', async () => {
    const small = createEventLog({ url: 'sqlite:small.db', retention: { maxEvents: 3 } }, dir, { pruneEvery: 1, pruneIntervalMs: 0 });
    try {
      const first = (await small.append({ source: 'x', type: 't', deliveryId: 'd0', payload: 0 })).event;
      for (let i = 1; i < 10; i++) await small.append({ source: 'x', type: 't', deliveryId: `d${i}`, payload: i });
      const stream = new EventStream(small, { source: 'x', after: first.id });
      await expect(stream.next()).rejects.toMatchObject({ extensions: { code: 'CURSOR_EXPIRED' } });
      expect(await stream.next()).toEqual({ done: true, value: undefined });
    } finally {
      await small.close();
    }
  });
});

// ---- over GraphQL --------------------------------------------------------------------------

const sdl = `
type Push {
  ref: String!
  commits: [Commit!]!
  "How many times this field ran so far, hub-wide: counts executions per event."
  executions: Int!
}
type Commit { id: ID! message: String! }
type Subscription {
  push(after: ID): Push! @subscribe(source: "github", types: ["push"])
  headCommit(after: ID): Commit @subscribe(source: "github", types: ["push"], select: "commits.0")
}
`;

const resolvers = `
globalThis.__eventsTestExecutions = 0;
export default { Push: { executions: () => ++globalThis.__eventsTestExecutions } };
`;

const github = { type: 'webhook', scheme: 'github', secret: 'test-secret' };

function pushPayload(i: number) {
  return { ref: `refs/heads/b${i}`, commits: [{ id: `c${i}`, message: `commit ${i}`, author: { name: 'x' } }], repository: { id: 1 } };
}

describe('events over GraphQL', () => {
  let h: TestHub;
  const clients: Client[] = [];
  beforeAll(async () => {
    h = await startHub({ 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers }, { connectors: { github }, server: { ws: { keepAliveMs: 600_000 } } });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.dispose()));
  });
  afterAll(() => h?.stop());

  const connect = (): Client => {
    const c = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
    clients.push(c);
    return c;
  };
  let delivery = 0;
  const append = async (source: string, type: string, payload: unknown) =>
    (await h.hub.eventLog.append({ source, type, deliveryId: `d${++delivery}`, payload })).event;

  /** Subscribes and collects `next` results; `until` resolves once `n` arrived. */
  function collect(c: Client, query: string, variables: Record<string, unknown> = {}) {
    const results: FormattedExecutionResult[] = [];
    let failed: unknown;
    let ended = false;
    const stop = c.subscribe({ query, variables }, {
      next: (r) => void results.push(r as FormattedExecutionResult),
      error: (e) => (failed = e),
      complete: () => (ended = true),
    });
    return {
      results,
      stop,
      get failed() {
        return failed;
      },
      get ended() {
        return ended;
      },
      count: (n: number) => until(() => results.length >= n || failed !== undefined, `${n} results of ${query}`).then(() => results),
    };
  }

  /** The newest cursor of a source, from the management API (what a client would do). */
  async function latest(source: string): Promise<string | null> {
    const r = await gql(h.url, '{ hub { eventSources { source latest count } } }');
    const sources = (r.body.data!.hub as { eventSources: { source: string; latest: string | null }[] }).eventSources;
    return sources.find((s) => s.source === source)?.latest ?? null;
  }

  async function metric(name: string, source: string): Promise<number> {
    const text = await (await fetch(`${h.origin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{source="${source}"}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  }

  it('Query.events pages through a source, oldest first, with a type filter', async () => {
    const a = await append('paging', 'push', { n: 1 });
    const b = await append('paging', 'issues', { n: 2 });
    const c = await append('paging', 'push', { n: 3 });
    const query = `query($after: ID, $types: [String!]) {
      events(source: "paging", types: $types, after: $after, first: 2) {
        edges { cursor node { id source type deliveryId receivedAt payload } }
        pageInfo { endCursor hasNextPage }
      } }`;
    const first = await gql(h.url, query);
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data).toEqual({
      events: {
        edges: [a, b].map((e) => ({ cursor: e.id, node: { id: e.id, source: 'paging', type: e.type, deliveryId: e.deliveryId, receivedAt: e.receivedAt, payload: e.payload } })),
        pageInfo: { endCursor: b.id, hasNextPage: true },
      },
    });
    const second = await gql(h.url, query, { after: b.id });
    expect(second.body.data).toEqual({
      events: { edges: [{ cursor: c.id, node: expect.objectContaining({ id: c.id, payload: { n: 3 } }) }], pageInfo: { endCursor: c.id, hasNextPage: false } },
    });
    // Past the end: no edges, and endCursor is the `after` given, to poll with.
    const empty = await gql(h.url, query, { after: c.id });
    expect(empty.body.data).toEqual({ events: { edges: [], pageInfo: { endCursor: c.id, hasNextPage: false } } });
    const pushes = await gql(h.url, query, { types: ['push'] });
    expect((pushes.body.data!.events as { edges: { cursor: string }[] }).edges.map((e) => e.cursor)).toEqual([a.id, c.id]);

    const tooMany = await gql(h.url, '{ events(source: "paging", first: 5000) { pageInfo { hasNextPage } } }');
    expect(tooMany.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const badCursor = await gql(h.url, '{ events(source: "paging", after: "not-a-cursor") { pageInfo { hasNextPage } } }');
    expect(badCursor.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const sources = await gql(h.url, '{ hub { eventSources { source latest count } } }');
    expect((sources.body.data!.hub as { eventSources: unknown[] }).eventSources).toContainEqual({ source: 'paging', latest: c.id, count: 3 });
  });

  it('Subscription.events replays after the cursor, then continues live; each frame carries its cursor', async () => {
    const e1 = await append('sub', 'push', { n: 1 });
    const e2 = await append('sub', 'push', { n: 2 });
    const e3 = await append('sub', 'issues', { n: 3 });
    const s = collect(connect(), 'subscription($after: ID) { events(source: "sub", after: $after) { id type payload } }', { after: e1.id });
    await s.count(2);
    const e4 = await append('sub', 'push', { n: 4 });
    const results = await s.count(3);
    expect(s.failed).toBeUndefined();
    expect(results).toEqual([e2, e3, e4].map((e) => ({ data: { events: { id: e.id, type: e.type, payload: e.payload } }, extensions: { cursor: e.id } })));
  });

  it('@subscribe gives typed fields: a GitHub push as Push { ref commits { id message } }, and select picks a part', async () => {
    const before = await latest('github');
    await append('github', 'push', pushPayload(1));
    await append('github', 'issues', { action: 'opened' });
    const c = connect();
    const pushes = collect(c, 'subscription($after: ID) { push(after: $after) { ref commits { id message } } }', { after: before ?? '0' });
    const heads = collect(c, 'subscription($after: ID) { headCommit(after: $after) { id message } }', { after: before ?? '0' });
    await pushes.count(1);
    const live = await append('github', 'push', pushPayload(2));
    expect((await pushes.count(2)).map((r) => r.data)).toEqual([
      { push: { ref: 'refs/heads/b1', commits: [{ id: 'c1', message: 'commit 1' }] } },
      { push: { ref: 'refs/heads/b2', commits: [{ id: 'c2', message: 'commit 2' }] } },
    ]);
    expect(pushes.results[1]!.extensions).toEqual({ cursor: live.id });
    expect((await heads.count(2)).map((r) => r.data)).toEqual([{ headCommit: { id: 'c1', message: 'commit 1' } }, { headCommit: { id: 'c2', message: 'commit 2' } }]);
  });

  it('replays thousands while events keep arriving: every event exactly once, in order, no gap at the seam', async () => {
    const source = 'seam';
    const first = await append(source, 'tick', { i: 0 });
    for (let i = 1; i < 3000; i++) await append(source, 'tick', { i });
    let appending = true;
    let appended = 0;
    // A writer that keeps appending while the subscriber replays, and after it caught up.
    const writer = (async () => {
      while (appending || appended < 300) {
        await append(source, 'tick', { live: appended++ });
        if (appended % 10 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const s = collect(connect(), 'subscription($after: ID) { events(source: "seam", after: $after) { id } }', { after: first.id });
    await s.count(3000);
    // The writer started before the subscription: live events were stored during the replay.
    expect(appended).toBeGreaterThan(0);
    appending = false;
    await writer;
    const stored = await h.hub.eventLog.read({ source, after: first.id, limit: 100_000 });
    expect(stored.length).toBe(2999 + appended);
    await s.count(stored.length);
    expect(s.failed).toBeUndefined();
    const ids = s.results.map((r) => (r.data!.events as { id: string }).id);
    expect(ids).toEqual(stored.map((e) => e.id));
  });

  it('shares one execution per event among subscribers with the same document, variables and scope', async () => {
    const after = (await latest('github')) ?? '0';
    const query = 'subscription($after: ID) { push(after: $after) { ref executions } }';
    const same = Array.from({ length: 5 }, () => collect(connect(), query, { after }));
    const other = collect(connect(), 'subscription($after: ID) { push(after: $after) { executions ref } }', { after });
    await until(async () => (await metric('junction_event_subscribers', 'github')) === 6, 'six subscribers');
    const executions = (globalThis as { __eventsTestExecutions?: number }).__eventsTestExecutions!;
    const runs = await metric('junction_event_subscription_executions_total', 'github');
    const lags = await metric('junction_event_delivery_lag_seconds_count', 'github');

    await append('github', 'push', pushPayload(3));
    const answers = await Promise.all(same.map((s) => s.count(1)));
    await other.count(1);
    // The delivery lag is measured once per shared execution of a live event: two here.
    expect(await metric('junction_event_delivery_lag_seconds_count', 'github')).toBe(lags + 2);
    // The five ran the resolver once between them (they all see the same count); the other
    // document ran it once more.
    const counts = answers.map((r) => (r[0]!.data!.push as { executions: number }).executions);
    expect(new Set(counts).size).toBe(1);
    expect((globalThis as { __eventsTestExecutions?: number }).__eventsTestExecutions).toBe(executions + 2);
    expect(await metric('junction_event_subscription_executions_total', 'github')).toBe(runs + 2);
    for (const r of answers) expect(r[0]!.data).toEqual({ push: { ref: 'refs/heads/b3', executions: counts[0] } });

    // Leaving: the shared execution goes on for the others, and stops with the last one.
    same[0]!.stop();
    await until(async () => (await metric('junction_event_subscribers', 'github')) === 5, 'one left');
    await append('github', 'push', pushPayload(4));
    await Promise.all(same.slice(1).map((s) => s.count(2)));
    for (const s of [...same.slice(1), other]) s.stop();
    await until(async () => (await metric('junction_event_subscribers', 'github')) === 0, 'all left');
  });

  it('closes a connection that stops reading with 4413, without holding back a fast subscriber of the same execution', async () => {
    const source = 'bulk';
    const after = (await append(source, 'start', {})).id;
    const query = 'subscription($after: ID) { events(source: "bulk", after: $after) { id payload } }';
    const fast = collect(connect(), query, { after });

    // The slow client speaks graphql-transport-ws over a raw socket, then stops reading.
    const slow = new WebSocket(h.wsUrl, 'graphql-transport-ws');
    const frames: string[] = [];
    slow.on('message', (data) => frames.push(String(data)));
    const closed = new Promise<number>((resolve) => slow.on('close', (code) => resolve(code)));
    await new Promise((resolve) => slow.once('open', resolve));
    slow.send(JSON.stringify({ type: 'connection_init' }));
    await until(() => frames.some((f) => f.includes('connection_ack')), 'connection_ack');
    slow.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables: { after } } }));
    await until(async () => (await metric('junction_event_subscribers', source)) === 2, 'both subscribers');
    slow.pause();

    const big = 'x'.repeat(64 * 1024);
    const total = 400; // ~26 MB: more than the OS buffers and the hub's 4 MiB limit together
    for (let i = 0; i < total; i++) await append(source, 'blob', { i, big });
    const got = await fast.count(total);
    expect(fast.failed).toBeUndefined();
    expect(got.map((r) => (r.data!.events as { payload: { i: number } }).payload.i)).toEqual(Array.from({ length: total }, (_, i) => i));

    await until(() => h.logs.some((l) => l.msg === 'WebSocket too slow: closed with 4413'), 'the overflow to be logged');
    slow.resume();
    // It reads what was sent before the cut; the close frame itself may be cut off with it.
    expect([4413, 1006]).toContain(await closed);
    expect(frames.filter((f) => f.includes('"type":"next"')).length).toBeLessThan(total);
    await until(async () => (await metric('junction_event_subscribers', source)) === 1, 'the slow subscriber to be gone');
  });
});

describe('events: retention and access', () => {
  it('ends a subscription whose cursor was pruned with CURSOR_EXPIRED', async () => {
    const h = await startHub({}, { eventLog: { url: 'sqlite:.junction/events.db', retention: { maxEvents: 5 } } });
    const c = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const first = (await h.hub.eventLog.append({ source: 'r', type: 't', deliveryId: 'd0', payload: 0 })).event;
      // The first append of a source in a process prunes it, then every 100th does.
      for (let i = 1; i <= 101; i++) await h.hub.eventLog.append({ source: 'r', type: 't', deliveryId: `d${i}`, payload: i });
      const error = await new Promise<unknown>((resolve) => {
        c.subscribe({ query: `subscription { events(source: "r", after: "${first.id}") { id } }` }, { next: () => {}, error: resolve, complete: () => resolve(undefined) });
      });
      expect(error).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'CURSOR_EXPIRED' }) })]);
      const page = await gql(h.url, `{ events(source: "r", after: "${first.id}") { pageInfo { hasNextPage } } }`);
      expect(page.body.errors?.[0]?.extensions?.code).toBe('CURSOR_EXPIRED');
    } finally {
      await c.dispose();
      await h.stop();
    }
  });

  it('requires admin for events when auth is configured; @subscribe fields follow their own @auth', async () => {
    const h = await startHub(
      { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers },
      { connectors: { github }, auth: { apiKeys: [{ key: 'admin-key-123456', sub: 'ops', roles: ['admin'] }, { key: 'user-key-1234567', sub: 'app' }] } },
    );
    try {
      const query = '{ events(source: "github") { pageInfo { hasNextPage } } }';
      expect((await gql(h.url, query)).body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect((await gql(h.url, query, {}, { 'x-api-key': 'user-key-1234567' })).body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect((await gql(h.url, query, {}, { 'x-api-key': 'admin-key-123456' })).body).toEqual({ data: { events: { pageInfo: { hasNextPage: false } } } });

      const subscribe = (apiKey: string, q: string) =>
        new Promise<unknown>((resolve) => {
          const c = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { apiKey } });
          const stop = c.subscribe({ query: q }, {
            next: (r) => {
              resolve(r);
              stop();
              void c.dispose();
            },
            error: (e) => {
              resolve(e);
              void c.dispose();
            },
            complete: () => {},
          });
        });
      const denied = await subscribe('user-key-1234567', 'subscription { events(source: "github", after: "0") { id } }');
      expect(JSON.stringify(denied)).toContain('FORBIDDEN');
      // A @subscribe field without @auth is open to any authenticated caller.
      await h.hub.eventLog.append({ source: 'github', type: 'push', deliveryId: 'p1', payload: pushPayload(9) });
      const allowed = await subscribe('user-key-1234567', 'subscription { push(after: "0") { ref } }');
      expect(allowed).toEqual({ data: { push: { ref: 'refs/heads/b9' } }, extensions: { cursor: expect.any(String) } });
    } finally {
      await h.stop();
    }
  });

  it('checks @subscribe uses at build time, with their SDL locations', async () => {
    const bad = `type Push { ref: String! }
type Subscription {
  a: Push @subscribe(source: "nope")
  b(after: String): Push @subscribe(source: "github.dead", select: "a..b")
  c(after: ID): Push @subscribe(source: "github", types: [])
}
type Query { q(after: ID): Push @subscribe(source: "github") }
`;
    const problem = await startHub({ 'schema/s.graphql': bad }, { connectors: { github } }).then(
      async (h) => {
        await h.stop();
        return undefined;
      },
      (error: Error) => error.message,
    );
    expect(problem).toContain('schema/s.graphql:3:3: Subscription.a @subscribe: source "nope" is not a configured connector');
    expect(problem).toContain('schema/s.graphql:3:3: Subscription.a @subscribe: the field must declare the argument `after: ID`');
    expect(problem).toContain('schema/s.graphql:4:3: Subscription.b @subscribe: select "a..b" is not a dot path');
    expect(problem).toContain('schema/s.graphql:4:3: Subscription.b @subscribe: the argument after must be of type ID');
    expect(problem).toContain('schema/s.graphql:5:3: Subscription.c @subscribe: types must list event types');
    expect(problem).toContain('schema/s.graphql:7:14: Query.q @subscribe: @subscribe binds Subscription fields only');
  });
});
