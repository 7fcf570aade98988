import { createRequire } from 'node:module';
import type pg from 'pg';
import { randomUUID } from 'node:crypto';
import type { EventLog, EventQuery, EventSourceStats, IdempotencyKeys, NewEvent, StoredEvent } from '../../connectors/runtime/contract.ts';
import {
  checkQuery, closedGuard, DEFAULT_PRUNE_EVERY, type EventLogOptions, type EventLogStore, parseSeqCursor, payloadText,
  PruneSchedule, pruneTimer, retentionCutoff, Watchers,
} from './common.ts';
import { CursorExpiredError, InvalidCursorError } from './errors.ts';
import type { Retention } from './retention.ts';

const require = createRequire(import.meta.url);
const postgres = () => require('pg') as typeof pg;

// Tables live in the connection's search_path (`?options=-c search_path=…` picks a schema).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS junction_events (
  source text NOT NULL,
  seq bigint NOT NULL,
  type text NOT NULL,
  delivery_id text NOT NULL,
  received_at timestamptz NOT NULL,
  payload json NOT NULL,
  PRIMARY KEY (source, seq),
  UNIQUE (source, delivery_id)
);
CREATE TABLE IF NOT EXISTS junction_event_sources (
  source text PRIMARY KEY,
  last_seq bigint NOT NULL,
  pruned_seq bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS junction_idempotency_keys (
  key text PRIMARY KEY,
  token text,
  value text,
  expires_at timestamptz NOT NULL
);`;

const COLUMNS = 'seq, type, delivery_id, received_at, payload';

interface Row {
  seq: string;
  type: string;
  delivery_id: string;
  received_at: Date;
  payload: unknown;
}

/**
 * PostgreSQL: shared by every hub instance. Ids are per-source sequence numbers (decimal
 * strings) from a counter row per source, incremented in the append's transaction: the row lock
 * serialises a source's appends until commit, so id N+1 is only assigned after N committed and a
 * reader that has seen N never later finds a new event at or below it. Appends NOTIFY (on
 * commit) a channel named after the schema, with the source as payload; one listening
 * connection per log wakes the watchers, whichever instance appended.
 */
export class PostgresEventLog implements EventLog, EventLogStore {
  readonly kind = 'postgres' as const;
  readonly #url: string;
  readonly #retention: Retention;
  readonly #options: EventLogOptions;
  readonly #watchers = new Watchers();
  readonly #schedule: PruneSchedule;
  #pool: pg.Pool | undefined;
  #ready: Promise<string> | undefined;
  #listener: { client: pg.Client; up: Promise<void> } | undefined;
  #retry: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(url: string, retention: Retention, options: EventLogOptions = {}) {
    this.#url = url;
    this.#retention = retention;
    this.#options = options;
    this.#schedule = new PruneSchedule(options.pruneEvery ?? DEFAULT_PRUNE_EVERY);
  }

  /** The pool, with the tables made: resolves with the NOTIFY channel. Retried after a failure. */
  #open(): Promise<string> {
    closedGuard(this.#closed);
    this.#pool ??= this.#newPool();
    const pool = this.#pool;
    this.#ready ??= (async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        // Two instances starting at once would race CREATE TABLE IF NOT EXISTS.
        await client.query("SELECT pg_advisory_xact_lock(hashtext('junction_event_log_schema'))");
        await client.query(SCHEMA);
        await client.query('COMMIT');
        const { rows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema');
        this.#timer ??= pruneTimer(this.#options, () => this.prune(), () => {});
        return `junction_events.${rows[0]?.schema ?? 'public'}`.slice(0, 63);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    })();
    this.#ready.catch(() => (this.#ready = undefined));
    return this.#ready;
  }

  #newPool(): pg.Pool {
    const pool = new (postgres().Pool)({ connectionString: this.#url, max: 10, idleTimeoutMillis: 30_000 });
    pool.on('error', () => {}); // an idle client's connection dropped: the pool replaces it
    return pool;
  }

  async append(event: NewEvent): Promise<{ event: StoredEvent; duplicate: boolean }> {
    const channel = await this.#open();
    const pool = this.#pool!;
    const receivedAt = event.receivedAt ?? new Date();
    const payload = payloadText(event.payload);
    const existing = 'SELECT ' + COLUMNS + ' FROM junction_events WHERE source = $1 AND delivery_id = $2';
    // A redelivery, the common duplicate, costs no lock.
    const seen = await pool.query<Row>(existing, [event.source, event.deliveryId]);
    if (seen.rows[0]) return { event: toEvent(event.source, seen.rows[0]), duplicate: true };

    const client = await pool.connect();
    let result: { event: StoredEvent; duplicate: boolean };
    try {
      await client.query('BEGIN');
      // The counter row's lock is held until COMMIT: the source's appends commit in id order.
      const next = await client.query<{ last_seq: string }>(
        `INSERT INTO junction_event_sources (source, last_seq) VALUES ($1, 1)
         ON CONFLICT (source) DO UPDATE SET last_seq = junction_event_sources.last_seq + 1 RETURNING last_seq`,
        [event.source],
      );
      // Under the lock: a concurrent delivery of the same id has committed by now.
      const again = await client.query<Row>(existing, [event.source, event.deliveryId]);
      if (again.rows[0]) {
        await client.query('ROLLBACK');
        return { event: toEvent(event.source, again.rows[0]), duplicate: true };
      }
      const seq = next.rows[0]!.last_seq;
      await client.query('INSERT INTO junction_events (source, seq, type, delivery_id, received_at, payload) VALUES ($1, $2, $3, $4, $5, $6)', [
        event.source, seq, event.type, event.deliveryId, receivedAt, payload,
      ]);
      await client.query('SELECT pg_notify($1, $2)', [channel, event.source]);
      await client.query('COMMIT');
      result = {
        event: { id: seq, source: event.source, type: event.type, deliveryId: event.deliveryId, receivedAt: receivedAt.toISOString(), payload: JSON.parse(payload) },
        duplicate: false,
      };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    // Awaited, so a read after the append sees retention applied; the event is stored either
    // way, so a failed pruning (retried on the next one) does not fail the append.
    if (this.#schedule.due(event.source)) await this.prune(event.source).catch(() => undefined);
    return result;
  }

  async read(query: EventQuery): Promise<StoredEvent[]> {
    checkQuery(query);
    const after = query.after === undefined ? undefined : parseSeqCursor(query.source, query.after);
    await this.#open();
    // One statement, one snapshot: the source's pruning mark and its events agree.
    const { rows } = await this.#pool!.query<Partial<Row> & { last_seq: string; pruned_seq: string }>(
      `SELECT s.last_seq, s.pruned_seq, e.seq, e.type, e.delivery_id, e.received_at, e.payload
       FROM junction_event_sources s
       LEFT JOIN LATERAL (
         SELECT ${COLUMNS} FROM junction_events ev
         WHERE ev.source = s.source AND ev.seq > $2 AND ($3::text[] IS NULL OR ev.type = ANY($3::text[]))
         ORDER BY ev.seq LIMIT $4
       ) e ON true
       WHERE s.source = $1`,
      [query.source, after ?? 0, query.types ? [...query.types] : null, query.limit],
    );
    const state = rows[0];
    if (after !== undefined) {
      if (after > Number(state?.last_seq ?? 0)) throw new InvalidCursorError(query.source, query.after!, 'no event of this source has that id yet');
      if (state && after < Number(state.pruned_seq)) {
        const oldest = await this.#pool!.query<{ seq: string | null }>('SELECT MIN(seq) AS seq FROM junction_events WHERE source = $1', [query.source]);
        throw new CursorExpiredError(query.source, query.after!, oldest.rows[0]?.seq ?? null);
      }
    }
    return rows.filter((r) => r.seq != null).map((r) => toEvent(query.source, r as Row));
  }

  async sources(): Promise<EventSourceStats[]> {
    await this.#open();
    const { rows } = await this.#pool!.query<{ source: string; latest: string | null; count: string }>(
      `SELECT s.source, MAX(e.seq) AS latest, COUNT(e.seq) AS count
       FROM junction_event_sources s LEFT JOIN junction_events e ON e.source = s.source
       GROUP BY s.source ORDER BY s.source`,
    );
    return rows.map((r) => ({ source: r.source, latest: r.latest, count: Number(r.count) }));
  }

  watch(source: string, listener: () => void): () => void {
    closedGuard(this.#closed);
    const stop = this.#watchers.add(source, listener);
    this.#listen();
    return stop;
  }

  /** Resolves once other instances' appends wake this log's watchers (the LISTEN is up). */
  async watching(): Promise<void> {
    await this.#listen();
  }

  /**
   * The one listening connection. Once it is up (and after every reconnection) every watcher is
   * woken: an append between a watcher's read and the LISTEN would otherwise go unheard.
   */
  #listen(): Promise<void> {
    if (this.#listener) return this.#listener.up;
    const client = new (postgres().Client)({ connectionString: this.#url });
    const up = (async () => {
      const channel = await this.#open();
      client.on('notification', (message) => {
        if (message.channel === channel && message.payload) this.#watchers.wake(message.payload);
      });
      await client.connect();
      await client.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
      this.#watchers.wakeAll();
    })();
    const listener = { client, up };
    this.#listener = listener;
    const lost = () => {
      if (this.#listener !== listener) return;
      this.#listener = undefined;
      client.end().catch(() => undefined);
      if (this.#closed) return;
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => {
        if (!this.#closed && this.#watchers.size > 0) this.#listen().catch(() => undefined);
      }, 1_000);
      this.#retry.unref();
    };
    client.on('error', lost);
    client.on('end', lost);
    up.catch(lost);
    return up;
  }

  readonly keys: IdempotencyKeys = {
    claim: async (key, leaseMs) => {
      await this.#open();
      const token = randomUUID();
      // Taken when absent or expired, in one statement: two instances claiming at once get one winner.
      const taken = await this.#pool!.query(
        `INSERT INTO junction_idempotency_keys (key, token, value, expires_at)
         VALUES ($1, $2, NULL, clock_timestamp() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET token = excluded.token, value = NULL, expires_at = excluded.expires_at
         WHERE junction_idempotency_keys.expires_at <= clock_timestamp()
         RETURNING token`,
        [key, token, leaseMs],
      );
      if (taken.rowCount === 1) return { state: 'claimed', token };
      const held = await this.#pool!.query<{ value: string | null }>('SELECT value FROM junction_idempotency_keys WHERE key = $1 AND expires_at > clock_timestamp()', [key]);
      const value = held.rows[0]?.value;
      // Expired in between, or held by an unsettled claim: either way, claim again later.
      return value == null ? { state: 'pending' } : { state: 'settled', value };
    },
    settle: async (key, token, value, ttlMs) => {
      await this.#open();
      await this.#pool!.query(
        `UPDATE junction_idempotency_keys SET value = $3, token = NULL, expires_at = clock_timestamp() + $4 * interval '1 millisecond'
         WHERE key = $1 AND token = $2`,
        [key, token, value, ttlMs],
      );
    },
    release: async (key, token) => {
      await this.#open();
      await this.#pool!.query('DELETE FROM junction_idempotency_keys WHERE key = $1 AND token = $2', [key, token]);
    },
  };

  /** Applies retention to one source or all; without a source, also forgets expired idempotency keys. */
  async prune(source?: string): Promise<void> {
    await this.#open();
    const pool = this.#pool!;
    if (source === undefined) await pool.query('DELETE FROM junction_idempotency_keys WHERE expires_at <= clock_timestamp()');
    const cutoff = new Date(retentionCutoff(this.#retention));
    const sources = source !== undefined ? [source] : (await pool.query<{ source: string }>('SELECT source FROM junction_event_sources')).rows.map((r) => r.source);
    for (const one of sources) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const state = await client.query<{ last_seq: string; pruned_seq: string }>('SELECT last_seq, pruned_seq FROM junction_event_sources WHERE source = $1 FOR UPDATE', [one]);
        const row = state.rows[0];
        if (row) {
          // Everything up to the newest event old enough goes: ids and ages go together.
          const aged = await client.query<{ seq: string | null }>('SELECT MAX(seq) AS seq FROM junction_events WHERE source = $1 AND received_at < $2', [one, cutoff]);
          const upTo = Math.max(Number(row.last_seq) - this.#retention.maxEvents, Number(aged.rows[0]?.seq ?? 0));
          if (upTo > Number(row.pruned_seq)) {
            await client.query('DELETE FROM junction_events WHERE source = $1 AND seq <= $2', [one, upTo]);
            await client.query('UPDATE junction_event_sources SET pruned_seq = $2 WHERE source = $1', [one, upTo]);
          }
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    }
  }


  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#retry);
    this.#watchers.clear();
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.client.end().catch(() => undefined);
    await this.#pool?.end().catch(() => undefined);
  }
}

function toEvent(source: string, row: Row): StoredEvent {
  return {
    id: String(row.seq),
    source,
    type: row.type,
    deliveryId: row.delivery_id,
    receivedAt: new Date(row.received_at).toISOString(),
    payload: row.payload,
  };
}
