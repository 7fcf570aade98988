import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import type { EventLog, EventQuery, EventSourceStats, IdempotencyKeys, KeyClaim, NewEvent, StoredEvent } from '../../connectors/runtime/contract.ts';
import {
  checkQuery, closedGuard, DEFAULT_PRUNE_EVERY, type EventLogOptions, type EventLogStore, parseSeqCursor, payloadText,
  PruneSchedule, pruneTimer, retentionCutoff, Watchers,
} from './common.ts';
import { CursorExpiredError, InvalidCursorError } from './errors.ts';
import type { Retention } from './retention.ts';

const require = createRequire(import.meta.url);

/** `sqlite:events.db` (relative to the config file), `sqlite:///abs/events.db`, `sqlite::memory:`. */
export function sqliteFile(url: string, baseDir: string): string {
  const rest = url.slice('sqlite:'.length);
  if (rest === ':memory:') return rest;
  const file = rest.startsWith('//') ? rest.slice(2) : rest;
  return path.resolve(baseDir, file);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS junction_events (
  source TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (source, seq),
  UNIQUE (source, delivery_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS junction_event_sources (
  source TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  pruned_seq INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS junction_idempotency_keys (
  key TEXT PRIMARY KEY,
  token TEXT,
  value TEXT,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

interface Row {
  seq: number;
  type: string;
  delivery_id: string;
  received_at: number;
  payload: string;
}

/**
 * The default store: one SQLite file in WAL mode, written by this process. Ids are per-source
 * sequence numbers (1, 2, 3 …) as decimal strings, taken from a counter row in the same
 * transaction as the insert; SQLite has one writer at a time, so ids commit in order and a
 * reader never finds a new event below one it has seen.
 *
 * Durability: `synchronous = FULL` — every append's commit fsyncs the WAL before `append`
 * resolves, so an event survives the process being killed and the machine losing power.
 * (NORMAL would survive a killed process but could lose the last commits to a power cut.)
 *
 * `watch` hears appends made through this object only: a SQLite log belongs to one hub
 * instance; several instances need PostgreSQL or Redis.
 */
export class SqliteEventLog implements EventLog, EventLogStore {
  readonly kind = 'sqlite' as const;
  readonly #file: string;
  readonly #retention: Retention;
  readonly #options: EventLogOptions;
  readonly #watchers = new Watchers();
  readonly #schedule: PruneSchedule;
  #db: Database.Database | undefined;
  #statements: ReturnType<SqliteEventLog['prepare']> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Appends waiting for this turn's group commit. */
  readonly #pending: (Pending & { resolve: (r: { event: StoredEvent; duplicate: boolean }) => void; reject: (e: unknown) => void })[] = [];

  constructor(file: string, retention: Retention, options: EventLogOptions = {}) {
    this.#file = file;
    this.#retention = retention;
    this.#options = options;
    this.#schedule = new PruneSchedule(options.pruneEvery ?? DEFAULT_PRUNE_EVERY);
  }

  /** Opened on first use: a hub that never receives an event creates no file. */
  #open() {
    closedGuard(this.#closed);
    if (this.#statements) return this.#statements;
    if (this.#file !== ':memory:') mkdirSync(path.dirname(this.#file), { recursive: true });
    const db = new (require('better-sqlite3') as typeof Database)(this.#file);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
    } catch (error) {
      db.close();
      throw error;
    }
    this.#db = db;
    this.#statements = this.prepare(db);
    this.#timer = pruneTimer(this.#options, () => this.prune(), () => {});
    return this.#statements;
  }

  /** The statements, prepared once. */
  private prepare(db: Database.Database) {
    const s = {
      existing: db.prepare<[string, string], Row>('SELECT seq, type, delivery_id, received_at, payload FROM junction_events WHERE source = ? AND delivery_id = ?'),
      next: db
        .prepare<[string], number>(
          'INSERT INTO junction_event_sources (source, last_seq) VALUES (?, 1) ON CONFLICT (source) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq',
        )
        .pluck(),
      insert: db.prepare('INSERT INTO junction_events (source, seq, type, delivery_id, received_at, payload) VALUES (?, ?, ?, ?, ?, ?)'),
      state: db.prepare<[string], { last_seq: number; pruned_seq: number }>('SELECT last_seq, pruned_seq FROM junction_event_sources WHERE source = ?'),
      read: db.prepare<[string, number, string | null, string | null, number], Row>(
        `SELECT seq, type, delivery_id, received_at, payload FROM junction_events
         WHERE source = ? AND seq > ? AND (? IS NULL OR type IN (SELECT value FROM json_each(?)))
         ORDER BY seq LIMIT ?`,
      ),
      oldest: db.prepare<[string], number>('SELECT MIN(seq) FROM junction_events WHERE source = ?').pluck(),
      sources: db.prepare<[], { source: string; latest: number | null; count: number }>(
        `SELECT s.source, MAX(e.seq) AS latest, COUNT(e.seq) AS count
         FROM junction_event_sources s LEFT JOIN junction_events e ON e.source = s.source GROUP BY s.source ORDER BY s.source`,
      ),
      allSources: db.prepare<[], string>('SELECT source FROM junction_event_sources').pluck(),
      // The newest event old enough to go; everything up to it goes (ids and ages go together).
      agedOut: db.prepare<[string, number], number | null>('SELECT MAX(seq) FROM junction_events WHERE source = ? AND received_at < ?').pluck(),
      deleteUpTo: db.prepare('DELETE FROM junction_events WHERE source = ? AND seq <= ?'),
      markPruned: db.prepare('UPDATE junction_event_sources SET pruned_seq = MAX(pruned_seq, ?) WHERE source = ?'),
      key: db.prepare<[string], { value: string | null; expires_at: number }>('SELECT value, expires_at FROM junction_idempotency_keys WHERE key = ?'),
      takeKey: db.prepare(
        `INSERT INTO junction_idempotency_keys (key, token, value, expires_at) VALUES (?, ?, NULL, ?)
         ON CONFLICT (key) DO UPDATE SET token = excluded.token, value = NULL, expires_at = excluded.expires_at`,
      ),
      settleKey: db.prepare('UPDATE junction_idempotency_keys SET value = ?, token = NULL, expires_at = ? WHERE key = ? AND token = ?'),
      releaseKey: db.prepare('DELETE FROM junction_idempotency_keys WHERE key = ? AND token = ?'),
      expireKeys: db.prepare('DELETE FROM junction_idempotency_keys WHERE expires_at <= ?'),
    };
    const claim = db.transaction((key: string, leaseMs: number): KeyClaim => {
      const now = Date.now();
      const row = s.key.get(key);
      if (row && row.expires_at > now) return row.value === null ? { state: 'pending' } : { state: 'settled', value: row.value };
      const token = randomUUID();
      s.takeKey.run(key, token, now + leaseMs);
      return { state: 'claimed', token };
    });
    const append = db.transaction((event: NewEvent, receivedAt: number, payload: string): { event: StoredEvent; duplicate: boolean } => {
      const found = s.existing.get(event.source, event.deliveryId);
      if (found) return { event: toEvent(event.source, found), duplicate: true };
      const seq = s.next.get(event.source)!;
      s.insert.run(event.source, seq, event.type, event.deliveryId, receivedAt, payload);
      return {
        event: { id: String(seq), source: event.source, type: event.type, deliveryId: event.deliveryId, receivedAt: new Date(receivedAt).toISOString(), payload: JSON.parse(payload) },
        duplicate: false,
      };
    });
    const read = db.transaction((query: EventQuery, after: number | undefined): StoredEvent[] => {
      const state = s.state.get(query.source);
      if (after !== undefined) {
        if (after > (state?.last_seq ?? 0)) throw new InvalidCursorError(query.source, query.after!, 'no event of this source has that id yet');
        if (state && after < state.pruned_seq) {
          const oldest = s.oldest.get(query.source);
          throw new CursorExpiredError(query.source, query.after!, oldest == null ? null : String(oldest));
        }
      }
      const types = query.types ? JSON.stringify(query.types) : null;
      return s.read.all(query.source, after ?? 0, types, types, query.limit).map((row) => toEvent(query.source, row));
    });
    const prune = db.transaction((source: string, retention: Retention, cutoff: number) => {
      const state = s.state.get(source);
      if (!state) return;
      const byCount = state.last_seq - retention.maxEvents;
      const byAge = s.agedOut.get(source, cutoff) ?? 0;
      const upTo = Math.max(byCount, byAge);
      if (upTo <= state.pruned_seq) return;
      s.deleteUpTo.run(source, upTo);
      s.markPruned.run(upTo, source);
    });
    // Group commit: every append waiting for the same turn of the event loop goes into one
    // transaction, so they share one fsync; each still resolves only once that commit is done.
    const appendAll = db.transaction((batch: readonly Pending[]) => batch.map((p) => append(p.event, p.receivedAt, p.payload)));
    return { ...s, appendAll: appendAll.immediate, read: read.deferred, prune: prune.immediate, claim: claim.immediate };
  }

  /**
   * Queued, and committed with every other append of this turn of the event loop in one
   * transaction (one fsync for all: what lets a busy hub store thousands of events a second with
   * `synchronous = FULL`); resolves once that transaction is durable.
   */
  append(event: NewEvent): Promise<{ event: StoredEvent; duplicate: boolean }> {
    try {
      this.#open();
      const pending = { event, receivedAt: (event.receivedAt ?? new Date()).getTime(), payload: payloadText(event.payload) };
      return new Promise((resolve, reject) => {
        this.#pending.push({ ...pending, resolve, reject });
        if (this.#pending.length === 1) setImmediate(() => this.#commit());
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #commit(): void {
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return;
    let results: { event: StoredEvent; duplicate: boolean }[];
    try {
      results = this.#open().appendAll(batch);
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    const stored = new Set<string>();
    batch.forEach((p, i) => {
      const result = results[i]!;
      if (!result.duplicate) stored.add(result.event.source);
      p.resolve(result);
    });
    for (const source of stored) {
      try {
        if (this.#schedule.due(source)) this.#open().prune(source, this.#retention, retentionCutoff(this.#retention));
      } catch {
        // the events are stored; pruning is retried on the next occasion
      }
      this.#watchers.wake(source);
    }
  }

  async read(query: EventQuery): Promise<StoredEvent[]> {
    checkQuery(query);
    const after = query.after === undefined ? undefined : parseSeqCursor(query.source, query.after);
    return this.#open().read(query, after);
  }

  async sources(): Promise<EventSourceStats[]> {
    return this.#open().sources.all().map((r) => ({ source: r.source, latest: r.latest === null ? null : String(r.latest), count: r.count }));
  }

  watch(source: string, listener: () => void): () => void {
    return this.#watchers.add(source, listener);
  }

  readonly keys: IdempotencyKeys = {
    claim: async (key, leaseMs) => this.#open().claim(key, leaseMs),
    settle: async (key, token, value, ttlMs) => {
      this.#open().settleKey.run(value, Date.now() + ttlMs, key, token);
    },
    release: async (key, token) => {
      this.#open().releaseKey.run(key, token);
    },
  };

  async watching(): Promise<void> {}

  /** Applies retention to one source or all; without a source, also forgets expired idempotency keys. */
  async prune(source?: string): Promise<void> {
    const s = this.#open();
    const cutoff = retentionCutoff(this.#retention);
    for (const one of source === undefined ? s.allSources.all() : [source]) s.prune(one, this.#retention, cutoff);
    if (source === undefined) s.expireKeys.run(Date.now());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Appends already accepted are committed, not dropped.
    this.#commit();
    this.#closed = true;
    clearInterval(this.#timer);
    this.#watchers.clear();
    this.#db?.close();
  }
}

/** One append waiting for the group commit. */
interface Pending {
  event: NewEvent;
  receivedAt: number;
  payload: string;
}

function toEvent(source: string, row: Row): StoredEvent {
  return {
    id: String(row.seq),
    source,
    type: row.type,
    deliveryId: row.delivery_id,
    receivedAt: new Date(row.received_at).toISOString(),
    payload: JSON.parse(row.payload),
  };
}
