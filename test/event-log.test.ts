// The durable event log (src/events/), one behavioural suite run against each store: SQLite
// (a file in a temp folder), PostgreSQL (a fresh schema) and Redis (a fresh key prefix), all real.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from '@redis/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.ts';
import { createEventLog, type EventLog, type EventLogOptions, type EventLogStore, type Retention, type StoredEvent } from '../src/events/index.ts';
import { ROOT, startHub, until } from './helpers.ts';

type Log = EventLog & EventLogStore;
const PG = 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = 'redis://127.0.0.1:6379';
const run = randomUUID().slice(0, 8);

interface Store {
  name: 'sqlite' | 'postgres' | 'redis';
  /** Instances made here share one store; closed after the suite. */
  open(retention?: Partial<Retention>, options?: EventLogOptions): Log;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** SQLite: the folder `sqlite:events.db` is relative to. */
  dir(): string;
}

function store(name: Store['name']): Store {
  const opened: Log[] = [];
  let url = '';
  let dir = '';
  const schema = `jx_eventlog_${run.replaceAll('-', '')}`;
  const prefix = `jtest-${run}`;
  return {
    name,
    dir: () => dir,
    open(retention, options) {
      const log = createEventLog({ url, retention }, dir || ROOT, { pruneIntervalMs: 0, prefix, ...options });
      opened.push(log);
      return log;
    },
    async setup() {
      if (name === 'sqlite') {
        dir = mkdtempSync(path.join(tmpdir(), 'junction-eventlog-'));
        url = 'sqlite:events.db';
      } else if (name === 'postgres') {
        const client = new pg.Client(PG);
        await client.connect();
        await client.query(`CREATE SCHEMA ${schema}`);
        await client.end();
        url = `${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      } else {
        url = REDIS;
      }
    },
    async teardown() {
      await Promise.all(opened.map((log) => log.close()));
      if (name === 'sqlite') rmSync(dir, { recursive: true, force: true });
      if (name === 'postgres') {
        const client = new pg.Client(PG);
        await client.connect();
        await client.query(`DROP SCHEMA ${schema} CASCADE`);
        await client.end();
      }
      if (name === 'redis') {
        const client = createClient({ url: REDIS });
        await client.connect();
        const keys = await client.keys(`${prefix}:*`);
        if (keys.length > 0) await client.del(keys);
        await client.close();
      }
    },
  };
}

let sourceCount = 0;
const source = () => `src_${run.slice(0, 4)}_${++sourceCount}`;
const event = (src: string, n: number, type = 'push') => ({ source: src, type, deliveryId: `d-${n}`, payload: { n, text: `event ${n}` } });

/** Rejection's `extensions.code`. */
async function codeOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return (error as { extensions?: { code?: unknown } }).extensions?.code;
  }
  return 'resolved';
}

/** A promise for the next call of a listener, and the listener. */
function wakeup() {
  let calls = 0;
  let waiters: (() => void)[] = [];
  return {
    listener: () => {
      calls++;
      for (const w of waiters) w();
      waiters = [];
    },
    get calls() {
      return calls;
    },
    next(): Promise<void> {
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** Compares two ids of one source in the log's order. */
function before(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am < bm || (am === bm && as < bs);
}

describe.each(['sqlite', 'postgres', 'redis'] as const)('event log on %s', (name) => {
  const s = store(name);
  let log: Log;
  beforeAll(async () => {
    await s.setup();
    log = s.open();
  });
  afterAll(() => s.teardown());

  it('answers appended events in order, after a cursor, filtered by type and limited', async () => {
    const src = source();
    const appended: StoredEvent[] = [];
    for (let n = 1; n <= 6; n++) appended.push((await log.append(event(src, n, n % 2 ? 'push' : 'issue'))).event);
    for (let i = 1; i < appended.length; i++) expect(before(appended[i - 1]!.id, appended[i]!.id)).toBe(true);

    const all = await log.read({ source: src, limit: 50 });
    expect(all).toEqual(appended);
    expect(all[0]).toMatchObject({ source: src, type: 'push', deliveryId: 'd-1', payload: { n: 1, text: 'event 1' } });
    expect(new Date(all[0]!.receivedAt).toISOString()).toBe(all[0]!.receivedAt);
    // A relative sqlite: path is relative to the config file's folder.
    if (name === 'sqlite') expect(existsSync(path.join(s.dir(), 'events.db'))).toBe(true);

    expect(await log.read({ source: src, after: appended[1]!.id, limit: 2 })).toEqual(appended.slice(2, 4));
    expect((await log.read({ source: src, types: ['issue'], limit: 50 })).map((e) => e.deliveryId)).toEqual(['d-2', 'd-4', 'd-6']);
    expect((await log.read({ source: src, types: ['issue'], after: appended[1]!.id, limit: 1 })).map((e) => e.deliveryId)).toEqual(['d-4']);
    expect(await log.read({ source: src, after: appended[5]!.id, limit: 50 })).toEqual([]);
    expect(await log.read({ source: `${src}_none`, limit: 50 })).toEqual([]);
    // Another source's events are its own.
    expect(await log.read({ source: source(), limit: 50 })).toEqual([]);
  });

  it('stores a (source, deliveryId) once: a redelivery answers the first event, duplicate', async () => {
    const src = source();
    const first = await log.append({ source: src, type: 'push', deliveryId: 'same', payload: { v: 1 } });
    const again = await log.append({ source: src, type: 'push', deliveryId: 'same', payload: { v: 2 } });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ event: first.event, duplicate: true });
    // The same delivery id from another source is another event.
    expect((await log.append({ source: source(), type: 'push', deliveryId: 'same', payload: {} })).duplicate).toBe(false);
    // Concurrent redeliveries: one stored.
    const racing = await Promise.all(Array.from({ length: 8 }, () => log.append({ source: src, type: 'push', deliveryId: 'race', payload: {} })));
    expect(racing.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(new Set(racing.map((r) => r.event.id)).size).toBe(1);
    expect((await log.read({ source: src, limit: 50 })).map((e) => e.deliveryId)).toEqual(['same', 'race']);
  });

  it('refuses a malformed cursor, or one no event has had yet, as BAD_USER_INPUT', async () => {
    const src = source();
    const { event: one } = await log.append(event(src, 1));
    expect(await codeOf(log.read({ source: src, after: 'not-a-cursor', limit: 5 }))).toBe('BAD_USER_INPUT');
    expect(await codeOf(log.read({ source: src, after: '', limit: 5 }))).toBe('BAD_USER_INPUT');
    const ahead = name === 'redis' ? `${Number(one.id.split('-')[0]) + 60_000}-0` : String(Number(one.id) + 10);
    expect(await codeOf(log.read({ source: src, after: ahead, limit: 5 }))).toBe('BAD_USER_INPUT');
  });

  it('keeps ids increasing under concurrent appends from two instances, and a polling reader misses none', async () => {
    const src = source();
    const writers = [log, s.open()];
    const reader = s.open();
    const total = 120;
    let writing = true;
    const seen: StoredEvent[] = [];
    // The reader polls after the last id it saw while the writes are in flight: an event that
    // committed late with an id below one it had seen would be missed.
    const polling = (async () => {
      for (;;) {
        const done = !writing;
        const page = await reader.read({ source: src, limit: 1000, ...(seen.length > 0 && { after: seen[seen.length - 1]!.id }) });
        seen.push(...page);
        if (done && page.length === 0) return;
        // One poll per turn of the event loop, as a real poller on a schedule: a SQLite read
        // answers at once, and a loop of microtasks alone would never let the group commit run.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const results = await Promise.all(Array.from({ length: total }, (_, n) => writers[n % 2]!.append(event(src, n))));
    writing = false;
    await polling;

    const ids = results.map((r) => r.event.id);
    expect(new Set(ids).size).toBe(total);
    expect(results.every((r) => !r.duplicate)).toBe(true);
    const stored = await reader.read({ source: src, limit: 1000 });
    expect(stored).toHaveLength(total);
    for (let i = 1; i < stored.length; i++) expect(before(stored[i - 1]!.id, stored[i]!.id)).toBe(true);
    if (name !== 'redis') expect(stored.map((e) => e.id)).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)));
    expect(seen).toEqual(stored);
    expect(new Set(stored.map((e) => e.deliveryId))).toEqual(new Set(results.map((r) => r.event.deliveryId)));
  });

  it('wakes watchers of the source on append, and stops after unsubscribing', async () => {
    const src = source();
    const other = wakeup();
    const woken = wakeup();
    const stopOther = log.watch(`${src}_other`, other.listener);
    const stop = log.watch(src, woken.listener);
    await log.watching();
    const next = woken.next();
    await log.append(event(src, 1));
    await next;
    const callsBefore = woken.calls;
    stop();
    stopOther();
    await log.append(event(src, 2));
    // A later append to another watched source proves the notification for src has been handled.
    const probe = wakeup();
    const stopProbe = log.watch(`${src}_probe`, probe.listener);
    await log.watching();
    const probed = probe.next();
    await log.append(event(`${src}_probe`, 1));
    await probed;
    stopProbe();
    expect(woken.calls).toBe(callsBefore);
  });

  // A SQLite log is one instance's: another process on the same file reads it, but is not woken.
  const shared = name !== 'sqlite';
  it(shared ? 'wakes a second instance on another connection' : 'a second instance on the same file reads what the first appended', async () => {
    const src = source();
    const second = s.open();
    const woken = wakeup();
    second.watch(src, woken.listener);
    await second.watching();
    const next = woken.next();
    await log.append(event(src, 1));
    if (shared) await next;
    expect((await second.read({ source: src, limit: 5 })).map((e) => e.deliveryId)).toEqual(['d-1']);
  });

  it('keeps maxEvents per source; a cursor below what was pruned is CURSOR_EXPIRED, never a skip', async () => {
    const src = source();
    const small = s.open({ maxEvents: 3 }, { pruneEvery: 1 });
    const appended: StoredEvent[] = [];
    for (let n = 1; n <= 6; n++) appended.push((await small.append(event(src, n))).event);
    expect(await small.read({ source: src, limit: 50 })).toEqual(appended.slice(3));

    let error: unknown;
    await small.read({ source: src, after: appended[1]!.id, limit: 50 }).catch((e: unknown) => (error = e));
    expect(error).toMatchObject({ extensions: { code: 'CURSOR_EXPIRED', source: src, oldest: appended[3]!.id } });
    expect((error as Error).message).toMatch(/without `after`/);
    expect(await codeOf(small.read({ source: src, after: appended[0]!.id, limit: 50 }))).toBe('CURSOR_EXPIRED');
    // The newest pruned id is still a good cursor: nothing after it is gone.
    expect(await small.read({ source: src, after: appended[2]!.id, limit: 50 })).toEqual(appended.slice(3));
    // Another source is pruned on its own count.
    const other = source();
    await small.append(event(other, 1));
    expect(await small.read({ source: other, limit: 50 })).toHaveLength(1);
  });

  it('prunes events older than maxAgeMs; their cursors expire', async () => {
    const src = source();
    const aging = s.open({ maxAgeMs: 400 }, { pruneEvery: 1 });
    const old1 = (await aging.append(event(src, 1))).event;
    const old2 = (await aging.append(event(src, 2))).event;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const fresh = (await aging.append(event(src, 3))).event; // the append prunes
    expect(await aging.read({ source: src, limit: 50 })).toEqual([fresh]);
    expect(await codeOf(aging.read({ source: src, after: old1.id, limit: 50 }))).toBe('CURSOR_EXPIRED');
    expect(await aging.read({ source: src, after: old2.id, limit: 50 })).toEqual([fresh]);
  });

  it('lists its sources with their newest id and count', async () => {
    const a = source();
    const b = source();
    await log.append(event(a, 1));
    const newest = (await log.append(event(a, 2))).event;
    const only = (await log.append(event(b, 1))).event;
    const stats = await log.sources();
    expect(stats.find((x) => x.source === a)).toEqual({ source: a, latest: newest.id, count: 2 });
    expect(stats.find((x) => x.source === b)).toEqual({ source: b, latest: only.id, count: 1 });
  });

  it('idempotency keys: one claim wins across instances, its settled value is answered until the TTL, a release frees the key', async () => {
    const other = s.open();
    const key = `key-${randomUUID()}`;
    const claims = await Promise.all([log.keys.claim(key, 60_000), other.keys.claim(key, 60_000)]);
    const won = claims.filter((c) => c.state === 'claimed');
    expect(won).toHaveLength(1);
    expect(claims.filter((c) => c.state === 'pending')).toHaveLength(1);
    const token = (won[0] as { token: string }).token;
    await other.keys.settle(key, 'not-my-token', 'wrong', 60_000); // another claim's settle does nothing
    expect(await log.keys.claim(key, 60_000)).toEqual({ state: 'pending' });
    await other.keys.settle(key, token, '{"messageId":"m1"}', 60_000);
    expect(await log.keys.claim(key, 60_000)).toEqual({ state: 'settled', value: '{"messageId":"m1"}' });

    const released = `key-${randomUUID()}`;
    const first = await log.keys.claim(released, 60_000);
    expect(first.state).toBe('claimed');
    await other.keys.release(released, (first as { token: string }).token);
    expect((await other.keys.claim(released, 60_000)).state).toBe('claimed');
  });

  it('idempotency keys: an unsettled claim lapses after its lease, a settled one after its TTL', async () => {
    const lapsing = `key-${randomUUID()}`;
    const dead = await log.keys.claim(lapsing, 300); // its claimer "died": never settled
    expect(dead.state).toBe('claimed');
    await until(async () => (await log.keys.claim(lapsing, 60_000)).state === 'claimed', 'the lease to lapse');
    const settled = `key-${randomUUID()}`;
    const claim = (await log.keys.claim(settled, 60_000)) as { token: string };
    await log.keys.settle(settled, claim.token, 'v', 300);
    await until(async () => (await log.keys.claim(settled, 60_000)).state === 'claimed', 'the TTL to pass');
  });

  it('refuses to work once closed', async () => {
    const closing = s.open();
    const src = source();
    await closing.append(event(src, 1));
    await closing.close();
    await closing.close(); // twice is fine
    await expect(closing.append(event(src, 2))).rejects.toThrow(/closed/);
    await expect(closing.read({ source: src, limit: 5 })).rejects.toThrow(/closed/);
    expect((await log.read({ source: src, limit: 5 })).map((e) => e.deliveryId)).toEqual(['d-1']);
  });
});

describe('event log durability (SQLite, synchronous = FULL)', () => {
  it('has an event after the appending process is killed with SIGKILL right after the append resolved', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'junction-eventlog-kill-'));
    try {
      const file = path.join(dir, 'events.db');
      const deliveryId = randomUUID();
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/event-log-append.ts'), `sqlite:${file}`, deliveryId], {
        cwd: ROOT, // where tsx resolves
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      const id = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk;
          const match = /appended (\S+)\n/.exec(out);
          if (match) {
            child.kill('SIGKILL'); // at once: nothing closes the database
            resolve(match[1]!);
          }
        });
        child.once('exit', () => reject(new Error(`the child exited before appending: ${stderr}`)));
      });
      expect(await exited).toBe('SIGKILL');

      const log = createEventLog(`sqlite:${file}`, dir);
      try {
        expect(await log.read({ source: 'killed', limit: 5 })).toEqual([
          expect.objectContaining({ id, source: 'killed', type: 'ping', deliveryId, payload: { deliveryId } }),
        ]);
      } finally {
        await log.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the eventLog option', () => {
  const parse = (raw: unknown) => parseConfig(raw, { file: 'junction.config.yaml', baseDir: tmpdir(), env: {} });

  it('defaults to a SQLite file under .junction/, and takes a URL or { url, retention }', async () => {
    expect((await parse({})).eventLog).toBe('sqlite:.junction/events.db');
    expect((await parse({ eventLog: 'redis://127.0.0.1:6379' })).eventLog).toBe('redis://127.0.0.1:6379');
    expect((await parse({ eventLog: { url: 'postgres://db/x', retention: { maxEvents: 10 } } })).eventLog).toEqual({
      url: 'postgres://db/x',
      retention: { maxEvents: 10, maxAgeMs: 7 * 24 * 3600 * 1000 },
    });
  });

  it('refuses another scheme by naming it, never the URL (it may hold a password)', async () => {
    const error = await parse({ eventLog: 'mysql://app:hunter2secret@db/x' }).catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/eventLog: expected a sqlite: path, a postgres:\/\/ URL or a redis:\/\/ URL, got a "mysql:" URL/);
    expect(String(error)).not.toContain('hunter2secret');
    const nested = await parse({ eventLog: { url: 'kafka://x', retention: { maxEvents: 0 } } }).catch((e: unknown) => e as Error);
    expect(String(nested)).toMatch(/eventLog/);
  });
});

describe('the hub and its event log', () => {
  it('opens the configured log on first use, relative to the config file, shares it and closes it on stop', async () => {
    const hub = await startHub({ 'schema/a.graphql': 'type Query { hello: String }' }, { eventLog: { url: 'sqlite:data/events.db', retention: { maxEvents: 5 } } });
    const { event: stored } = await hub.hub.eventLog.append({ source: 'hooks', type: 'push', deliveryId: 'one', payload: { ok: true } });
    expect(await hub.hub.eventLog.read({ source: 'hooks', limit: 5 })).toEqual([stored]);
    const log = hub.hub.eventLog;
    await hub.hub.stop();
    await expect(log.append({ source: 'hooks', type: 'push', deliveryId: 'two', payload: {} })).rejects.toThrow(/closed/);
    await hub.stop();
  });
});
