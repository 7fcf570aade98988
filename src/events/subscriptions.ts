// The replay-then-live stream behind `Subscription.events` and `@subscribe` fields (SPEC §6).
import type { EventLog, StoredEvent } from '../../connectors/runtime/contract.ts';

/** Events read from the log per page, while replaying and after each wake-up. */
export const EVENT_PAGE_SIZE = 500;

export interface EventStreamOptions {
  source: string;
  /** Only these types; default every type. */
  types?: readonly string[] | null | undefined;
  /**
   * Replay every stored event after this cursor, then continue live. Without it the stream is
   * live only: it starts after the source's newest event at the time it starts.
   */
  after?: string | null | undefined;
  /** Default EVENT_PAGE_SIZE. */
  pageSize?: number;
}

/**
 * One source's events from a cursor, as an async iterator: pages are read from the log until
 * caught up, then each `watch` wake-up reads again after the last event delivered. The log is
 * the only source of truth (a wake-up carries no data), so the seam between replay and live can
 * neither skip nor repeat an event. A `read` that fails (CURSOR_EXPIRED: the cursor's events were
 * pruned) rejects `next()`, which ends the subscription with that error. `return()` ends it at
 * once, even while waiting for events, and removes the watch.
 *
 * `next()` is not re-entrant: call it again once the previous call settled (graphql-js does).
 */
export class EventStream implements AsyncIterableIterator<StoredEvent> {
  readonly #log: EventLog;
  readonly #source: string;
  readonly #types: readonly string[] | undefined;
  readonly #pageSize: number;
  /** The last event delivered (or the start cursor); undefined: from the oldest retained. */
  #cursor: string | undefined;
  /** Whether the start position is still to be found (live only: the source's newest event). */
  #started: boolean;
  /** Read, not yet delivered. */
  #page: StoredEvent[] = [];
  #pageAt = 0;
  /** A wake-up (or a full page) since the last read: read again before waiting. */
  #dirty = true;
  #wake: (() => void) | undefined;
  #closed = false;
  readonly #unwatch: () => void;
  /** Whether the stream has caught up once: events read after that are live, not replayed. */
  #live = false;

  constructor(log: EventLog, options: EventStreamOptions) {
    this.#log = log;
    this.#source = options.source;
    this.#types = options.types && options.types.length > 0 ? options.types : undefined;
    this.#pageSize = options.pageSize ?? EVENT_PAGE_SIZE;
    this.#cursor = options.after ?? undefined;
    this.#started = options.after != null;
    // Watching before the first read: an event appended while that read runs still wakes us.
    this.#unwatch = log.watch(this.#source, () => {
      this.#dirty = true;
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    });
  }

  /** The last event delivered, or the cursor it started from. */
  get cursor(): string | undefined {
    return this.#cursor;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<StoredEvent, undefined>> {
    try {
      if (!this.#started) {
        const stats = (await this.#log.sources()).find((s) => s.source === this.#source);
        this.#cursor = stats?.latest ?? undefined;
        this.#started = true;
      }
      for (;;) {
        if (this.#closed) return { done: true, value: undefined };
        if (this.#pageAt < this.#page.length) {
          const event = this.#page[this.#pageAt++]!;
          this.#cursor = event.id;
          if (this.#live) deliveries.get(this.#log)?.(event.source, (Date.now() - Date.parse(event.receivedAt)) / 1000);
          return { done: false, value: event };
        }
        if (!this.#dirty) {
          this.#live = true;
          await new Promise<void>((resolve) => (this.#wake = resolve));
          continue;
        }
        this.#dirty = false;
        const page = await this.#log.read({ source: this.#source, types: this.#types, after: this.#cursor, limit: this.#pageSize });
        this.#page = page;
        this.#pageAt = 0;
        // A full page: there may be more behind it, read again without waiting.
        if (page.length >= this.#pageSize) this.#dirty = true;
      }
    } catch (error) {
      this.#close();
      throw error;
    }
  }

  async return(): Promise<IteratorResult<StoredEvent, undefined>> {
    this.#close();
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<StoredEvent, undefined>> {
    this.#close();
    throw error;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#page = [];
    this.#unwatch();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Who is told of each live event a stream hands on, by event log (the hub's delivery-lag metric). */
const deliveries = new WeakMap<EventLog, (source: string, lagSeconds: number) => void>();

/** Calls `observe` for every live event a stream over `log` hands on, with its lag since receipt. */
export function observeDeliveries(log: EventLog, observe: (source: string, lagSeconds: number) => void): void {
  deliveries.set(log, observe);
}

/** The cursor of the event each subscription context last resolved, for `extensions.cursor`. */
const lastCursor = new WeakMap<object, string>();

/** Records that `context` is resolving `event` (called by the event fields' resolvers). */
export function noteCursor(context: object, event: StoredEvent): void {
  lastCursor.set(context, event.id);
}

/** The id of the event last resolved with `context`; sent as `extensions.cursor` of each frame. */
export function cursorOf(context: object): string | undefined {
  return lastCursor.get(context);
}

/** The part of `value` at a dot path (`commits.0.id`); undefined when absent. */
export function atPath(value: unknown, path: string | null | undefined): unknown {
  if (!path) return value;
  let current = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
