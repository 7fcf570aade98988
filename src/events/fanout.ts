// Subscription deduplication for event log subscriptions over graphql-ws: subscribers with the
// same document, variables and auth scope share one execution and one serialized payload.
import type { ExecutionResult } from 'graphql';
import { Counter, Gauge, type Registry } from 'prom-client';

/** What the fan-out needs of a WebSocket (`ws`'s WebSocket has it). */
export interface FanoutSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code: number, reason: string): void;
  terminate(): void;
}

/** WebSocket close code for a connection whose unsent frames went over the limit. */
export const OVERFLOW_CLOSE_CODE = 4413;
const OPEN = 1;
/** A closing socket that does not read is cut after this long (its buffer is freed then). */
const OVERFLOW_CLOSE_GRACE_MS = 1_000;
/** How often a group waiting for its subscribers' connections to drain looks again. */
const PACE_POLL_MS = 5;

export interface FanoutOptions {
  /** Bytes a connection may have queued unsent; over it, the connection is closed with 4413. */
  maxBufferedBytes: number;
  /** The `payload` of a `next` frame, as JSON text: errors formatted, extensions added. */
  serialize(result: ExecutionResult, context: unknown): string;
  onOverflow(socket: FanoutSocket): void;
  registry: Registry;
}

/**
 * Shared executions by key. A group whose subscription replays from a cursor (`after`) takes
 * new members only until it delivered its first event: a later subscriber with the same cursor
 * must get the replay too, so it starts a group of its own. A live group takes members anytime.
 */
export class SubscriptionFanout {
  readonly #groups = new Map<string, Group>();
  readonly #options: FanoutOptions;
  readonly #subscribers: Gauge<'source'>;
  readonly #executions: Counter<'source'>;

  constructor(options: FanoutOptions) {
    this.#options = options;
    this.#subscribers = new Gauge({
      name: 'junction_event_subscribers',
      help: 'Open subscriptions to event log sources (Subscription.events, @subscribe fields), by source.',
      labelNames: ['source'] as const,
      registers: [options.registry],
    });
    this.#executions = new Counter({
      name: 'junction_event_subscription_executions_total',
      help: 'Executions of event subscription documents, one per event per group of identical subscriptions (not per subscriber), by source.',
      labelNames: ['source'] as const,
      registers: [options.registry],
    });
  }

  /**
   * Joins the group for `key`, starting it with `start` (graphql-js `subscribe`) when there is
   * none that can take a member. Resolves with a subscriber for graphql-ws to iterate (attach it
   * to the socket with `attach`), or with the single result `start` gave (an error).
   */
  async join(
    key: string,
    meta: { source: string; replaying: boolean; context: unknown },
    start: () => Promise<AsyncIterable<ExecutionResult> | ExecutionResult>,
  ): Promise<FanoutSubscriber | ExecutionResult> {
    let group = this.#groups.get(key);
    if (!group?.joinable) {
      group = new Group(key, meta, this.#options, () => {
        if (this.#groups.get(key) === group) this.#groups.delete(key);
      }, () => this.#executions.inc({ source: meta.source }));
      this.#groups.set(key, group);
      group.start(start);
    }
    const subscriber = new FanoutSubscriber(group, this.#options, this.#subscribers, meta.source);
    group.add(subscriber);
    const ready = await group.ready;
    if (ready !== true) {
      subscriber.end();
      group.remove(subscriber);
      return ready;
    }
    return subscriber;
  }

  /** Groups running now (for tests and the curious). */
  get groups(): number {
    return this.#groups.size;
  }
}

class Group {
  readonly subscribers = new Set<FanoutSubscriber>();
  joinable = true;
  ready!: Promise<true | ExecutionResult>;
  #iterator: AsyncIterator<ExecutionResult> | undefined;
  #ended = false;

  constructor(
    readonly key: string,
    readonly meta: { source: string; replaying: boolean; context: unknown },
    readonly options: FanoutOptions,
    readonly forget: () => void,
    readonly executed: () => void,
  ) {}

  start(start: () => Promise<AsyncIterable<ExecutionResult> | ExecutionResult>): void {
    this.ready = (async () => {
      let result: AsyncIterable<ExecutionResult> | ExecutionResult;
      try {
        result = await start();
      } catch (error) {
        this.#end();
        throw error;
      }
      if (!(Symbol.asyncIterator in result)) {
        this.#end();
        return result;
      }
      this.#iterator = result[Symbol.asyncIterator]();
      if (this.subscribers.size === 0) void this.#stop();
      else void this.#pump();
      return true as const;
    })();
  }

  add(subscriber: FanoutSubscriber): void {
    this.subscribers.add(subscriber);
  }

  remove(subscriber: FanoutSubscriber): void {
    if (!this.subscribers.delete(subscriber) || this.subscribers.size > 0) return;
    // The last one left: the execution stops and its source iterator is closed.
    void this.#stop();
  }

  async #pump(): Promise<void> {
    const iterator = this.#iterator!;
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done || this.#ended) break;
        this.executed();
        if (this.meta.replaying) this.joinable = false;
        // Serialized once, whatever the number of subscribers.
        const payload = this.options.serialize(next.value, this.meta.context);
        for (const subscriber of [...this.subscribers]) subscriber.deliver(payload);
        await this.#paced();
      }
      this.#end();
      for (const subscriber of [...this.subscribers]) subscriber.end();
    } catch (error) {
      this.#end();
      for (const subscriber of [...this.subscribers]) subscriber.end(error);
    }
  }

  /**
   * The group goes at the pace of its fastest subscriber: while every connection has more than a
   * quarter of the limit queued, it waits (the event log keeps what is not read yet). A subscriber
   * that falls a whole limit behind the fastest is closed (`deliver`).
   */
  async #paced(): Promise<void> {
    const highWater = this.options.maxBufferedBytes / 4;
    for (;;) {
      if (this.#ended) return;
      const queued = [...this.subscribers].flatMap((s) => s.queued() ?? []);
      if (queued.length === 0 || queued.some((bytes) => bytes <= highWater)) return;
      await new Promise((resolve) => setTimeout(resolve, PACE_POLL_MS));
    }
  }

  async #stop(): Promise<void> {
    this.#end();
    await this.#iterator?.return?.();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.joinable = false;
    this.forget();
  }
}

/**
 * One subscriber of a group, as graphql-ws sees it: an async iterator that yields nothing (its
 * frames go to the socket directly, built around the group's shared payload) and ends when the
 * group does, or throws the group's error. `return()` (the client completed, or disconnected)
 * leaves the group.
 */
export class FanoutSubscriber implements AsyncIterableIterator<ExecutionResult> {
  #target: { socket: FanoutSocket; prefix: string } | undefined;
  /** Payloads delivered before `attach` (a few at most: attach follows in the same tick or so). */
  #early: string[] = [];
  #earlyBytes = 0;
  #done = false;
  #error: unknown;
  #settle: (() => void) | undefined;

  constructor(
    readonly group: Group,
    readonly options: FanoutOptions,
    readonly gauge: Gauge<'source'>,
    readonly source: string,
  ) {
    gauge.inc({ source });
  }

  /** Where this subscriber's frames go: the connection and the operation id the client chose. */
  attach(socket: FanoutSocket, id: string): void {
    this.#target = { socket, prefix: `{"id":${JSON.stringify(id)},"type":"next","payload":` };
    const early = this.#early;
    this.#early = [];
    for (const payload of early) this.deliver(payload);
  }

  deliver(payload: string): void {
    if (this.#done) return;
    const target = this.#target;
    if (!target) {
      this.#early.push(payload);
      this.#earlyBytes += payload.length;
      if (this.#earlyBytes > this.options.maxBufferedBytes) this.end(new Error('subscriber not attached'));
      return;
    }
    const { socket } = target;
    if (socket.readyState !== OPEN) return;
    if (socket.bufferedAmount > this.options.maxBufferedBytes) {
      this.options.onOverflow(socket);
      return;
    }
    socket.send(`${target.prefix}${payload}}`);
  }

  /** Bytes queued on this subscriber's connection; undefined when it takes no frames. */
  queued(): number | undefined {
    const socket = this.#target?.socket;
    return !this.#done && socket?.readyState === OPEN ? socket.bufferedAmount : undefined;
  }

  /** The group ended: done, or failed with `error`. */
  end(error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.gauge.dec({ source: this.source });
    this.#settle?.();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ExecutionResult, undefined>> {
    if (!this.#done) await new Promise<void>((resolve) => (this.#settle = resolve));
    if (this.#error !== undefined) {
      const error = this.#error;
      this.#error = undefined;
      throw error;
    }
    return { done: true, value: undefined };
  }

  async return(): Promise<IteratorResult<ExecutionResult, undefined>> {
    this.end();
    this.group.remove(this);
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<ExecutionResult, undefined>> {
    await this.return();
    throw error;
  }
}

/**
 * Closes a connection over its buffer limit: a close frame with 4413 (a client still reading
 * gets it after what was queued before), and since a client that stopped reading never will,
 * the connection is cut shortly after, which frees what it had queued.
 */
export function closeSlowSocket(socket: FanoutSocket): void {
  if (socket.readyState !== OPEN) return;
  socket.close(OVERFLOW_CLOSE_CODE, 'Subscriber too slow: over the send buffer limit; resubscribe with after: <last cursor>');
  setTimeout(() => socket.terminate(), OVERFLOW_CLOSE_GRACE_MS).unref();
}
