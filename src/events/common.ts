import type { EventQuery, StoredEvent } from '../../connectors/runtime/contract.ts';
import { EventLogClosedError, InvalidCursorError } from './errors.ts';
import type { Retention } from './retention.ts';

/** Tuning a hub never needs; tests use it to prune on every append. */
export interface EventLogOptions {
  /** Default 100. A source is pruned on its first append in this process, then every this many. */
  pruneEvery?: number;
  /** Default 60000. Every source is pruned on this interval too (quiet sources age out); 0: never. */
  pruneIntervalMs?: number;
  /** Redis only, default "junction": keys are `<prefix>:events:<source>` and so on. */
  prefix?: string;
}

/** What every store answers besides the contract: its kind, and pruning on demand. */
export interface EventLogStore {
  readonly kind: 'sqlite' | 'postgres' | 'redis';
  /** Applies retention now, to one source or to all. */
  prune(source?: string): Promise<void>;
  /**
   * Resolves once `watch` hears appends made by other instances too (PostgreSQL: the LISTEN
   * connection is up; Redis: subscribed; SQLite: at once, it has no other instances).
   */
  watching(): Promise<void>;
}

/** In-process listeners by source. A throwing listener is its own problem: it is skipped. */
export class Watchers {
  readonly #bySource = new Map<string, Set<() => void>>();

  add(source: string, listener: () => void): () => void {
    let set = this.#bySource.get(source);
    if (!set) this.#bySource.set(source, (set = new Set()));
    // Each call its own entry, even for the same function.
    const entry = () => listener();
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.#bySource.get(source) === set) this.#bySource.delete(source);
    };
  }

  /**
   * Wakes the listeners of `source` on the next turn of the event loop, not now: the appender
   * (a webhook about to answer 202) finishes first, and the fan-out to subscribers that the
   * wake-up starts does not hold its answer back.
   */
  wake(source: string): void {
    setImmediate(() => {
      for (const listener of [...(this.#bySource.get(source) ?? [])]) {
        try {
          listener();
        } catch {
          // a wake-up only; the listener's failure is not the appender's
        }
      }
    });
  }

  /** After a reconnection: notifications may have been missed, so everyone reads again. */
  wakeAll(): void {
    for (const source of [...this.#bySource.keys()]) this.wake(source);
  }

  get size(): number {
    return this.#bySource.size;
  }

  clear(): void {
    this.#bySource.clear();
  }
}

/** Counts appends per source and says when a source is due for pruning. */
export class PruneSchedule {
  readonly #every: number;
  readonly #counts = new Map<string, number>();

  constructor(every: number) {
    this.#every = Math.max(1, every);
  }

  /** True on a source's first append in this process, then every `every` appends. */
  due(source: string): boolean {
    const n = this.#counts.get(source) ?? 0;
    this.#counts.set(source, (n + 1) % this.#every);
    if (this.#counts.size > 10_000) this.#counts.clear(); // many sources: start counting afresh
    return n === 0;
  }
}

export const DEFAULT_PRUNE_EVERY = 100;
export const DEFAULT_PRUNE_INTERVAL_MS = 60_000;

/** Starts the periodic pruning; the timer never keeps the process alive. */
export function pruneTimer(options: EventLogOptions, prune: () => Promise<void>, onError: (error: unknown) => void): NodeJS.Timeout | undefined {
  const interval = options.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS;
  if (interval <= 0) return undefined;
  const timer = setInterval(() => void prune().catch(onError), interval);
  timer.unref();
  return timer;
}

/** A per-source sequence cursor (SQLite, PostgreSQL): a decimal integer, 0 meaning "from the start". */
export function parseSeqCursor(source: string, after: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(after) || !Number.isSafeInteger(Number(after))) {
    throw new InvalidCursorError(source, after, 'expected an event id of this source (a decimal number)');
  }
  return Number(after);
}

export function checkQuery(query: EventQuery): void {
  if (!Number.isInteger(query.limit) || query.limit < 0) throw new TypeError(`limit must be a non-negative integer, got ${query.limit}`);
}

export function retentionCutoff(retention: Retention, now = Date.now()): number {
  return now - retention.maxAgeMs;
}

export function closedGuard(closed: boolean): void {
  if (closed) throw new EventLogClosedError();
}

export function payloadText(payload: unknown): string {
  const text = JSON.stringify(payload ?? null);
  if (text === undefined) throw new TypeError('the event payload is not JSON');
  return text;
}

export type { StoredEvent };
