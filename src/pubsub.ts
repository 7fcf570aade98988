/**
 * `pubsub`: the hub's `PubSubEngine` — `context.pubsub` in code resolvers, `deps.pubsub` in
 * connectors, and what feeds `Subscription.connectorStatus`.
 *
 * - `memory` (the default): graphql-subscriptions' `PubSub`, this process only.
 * - `redis://…` / `rediss://…`: Redis `PUBLISH`/`SUBSCRIBE` on one channel,
 *   `junction:pubsub:<database number>` (Redis pub/sub ignores the database number; the channel
 *   name carries it, so hubs on different databases of one server never hear each other).
 * - `postgres://…` / `postgresql://…`: `NOTIFY`/`LISTEN` on one channel named after the
 *   connection's schema, `junction_pubsub.<schema>` (`?options=-c%20search_path%3D…` picks it).
 *   A `NOTIFY` payload must be shorter than 8000 bytes: a larger publish is refused.
 *
 * With Redis or PostgreSQL every hub instance on the same server (and database, and schema)
 * hears every publish, its own included: a publish travels through the server and back, so every
 * instance delivers the same messages in the same order. Payloads travel as JSON (a `Date`
 * arrives as its ISO string, `undefined` fields are dropped). Delivery is at most once: what is
 * published while an instance's listening connection is down (it reconnects by itself) is not
 * delivered there. What must not be lost belongs in the event log (`eventLog`).
 */
import { createRequire } from 'node:module';
import type { RedisClientType } from '@redis/client';
import { PubSub, PubSubEngine } from 'graphql-subscriptions';
import type pg from 'pg';
import type { Logger } from 'pino';
import { redactUrl } from './secrets.ts';

/** The hub's pub/sub, with its connections' life. */
export interface HubPubSub extends PubSubEngine {
  /** Connects (Redis, PostgreSQL) before the hub serves; an unreachable server is logged, never thrown. */
  start(): Promise<void>;
  /** Closes its connections; later publishes and subscribes are refused. */
  close(): Promise<void>;
}

/** The hub's pub/sub for a `pubsub` setting: `memory`, a `redis(s)://` or a `postgres(ql)://` URL. */
export function createPubSub(setting: string, logger: Logger): HubPubSub {
  if (setting === 'memory') return new MemoryPubSub();
  const scheme = /^([a-z]+):/i.exec(setting)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') return new RedisPubSub(setting, logger);
  if (scheme === 'postgres' || scheme === 'postgresql') return new PostgresPubSub(setting, logger);
  throw new Error(`pubsub: expected "memory", a redis:// URL or a postgres:// URL, got ${scheme ? `a "${scheme}:" URL` : 'no URL scheme'}`);
}

/** Largest `NOTIFY` payload PostgreSQL accepts, in bytes, plus one (it must be shorter than 8000). */
export const NOTIFY_PAYLOAD_LIMIT = 8000;

/** How long connecting may take before an operation fails (the connection keeps being retried). */
const CONNECT_TIMEOUT_MS = 5_000;
/** How long a lost PostgreSQL listening connection waits before connecting again. */
const RELISTEN_MS = 1_000;

class MemoryPubSub extends PubSub implements HubPubSub {
  async start(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A message on the shared channel: the trigger and its payload. */
interface Message {
  t: string;
  p?: unknown;
}

/**
 * What the Redis and PostgreSQL engines share: local subscribers by trigger, fed by the one
 * channel this instance listens to. `asyncIterableIterator` is PubSubEngine's own: it subscribes
 * on its first `next()` and unsubscribes on `return()`.
 */
abstract class SharedPubSub extends PubSubEngine implements HubPubSub {
  protected readonly logger: Logger;
  /** Local subscribers: trigger → id → callback, and each id's trigger. */
  readonly #byTrigger = new Map<string, Map<number, (payload: unknown) => void>>();
  readonly #triggers = new Map<number, string>();
  #nextId = 0;
  protected closed = false;

  constructor(logger: Logger) {
    super();
    this.logger = logger;
  }

  /** Sends one encoded message to every instance (this one included). */
  protected abstract send(message: string): Promise<void>;
  /** Resolves once this instance hears the channel. */
  protected abstract listen(): Promise<void>;
  protected abstract connectPublisher(): Promise<void>;
  protected abstract shutdown(): Promise<void>;
  protected abstract readonly kind: string;

  async start(): Promise<void> {
    const results = await Promise.allSettled([this.connectPublisher(), this.listen()]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      this.logger.warn(
        { err: (failed as PromiseRejectedResult).reason },
        `pubsub (${this.kind}) unreachable: publishes fail and subscriptions wait until it is back`,
      );
    }
  }

  async publish(trigger: string, payload: unknown): Promise<void> {
    this.#guard();
    const message: Message = { t: trigger, p: payload };
    await this.send(JSON.stringify(message));
  }

  async subscribe(trigger: string, onMessage: (payload: unknown) => void): Promise<number> {
    this.#guard();
    const id = ++this.#nextId;
    let handlers = this.#byTrigger.get(trigger);
    if (!handlers) this.#byTrigger.set(trigger, (handlers = new Map()));
    handlers.set(id, onMessage);
    this.#triggers.set(id, trigger);
    try {
      await this.listen();
    } catch (error) {
      this.unsubscribe(id);
      throw error;
    }
    return id;
  }

  unsubscribe(id: number): void {
    const trigger = this.#triggers.get(id);
    if (trigger === undefined) return;
    this.#triggers.delete(id);
    const handlers = this.#byTrigger.get(trigger);
    handlers?.delete(id);
    if (handlers?.size === 0) this.#byTrigger.delete(trigger);
  }

  /** Whether anyone here listens: a lost PostgreSQL listener only reconnects for them. */
  protected get listened(): boolean {
    return this.#triggers.size > 0;
  }

  /** One message heard on the channel: to this instance's subscribers of its trigger. */
  protected deliver(text: string): void {
    let message: Message;
    try {
      message = JSON.parse(text) as Message;
    } catch {
      return; // not one of ours
    }
    if (typeof message?.t !== 'string') return;
    const handlers = this.#byTrigger.get(message.t);
    if (!handlers) return;
    for (const onMessage of [...handlers.values()]) {
      try {
        onMessage(message.p);
      } catch (error) {
        this.logger.warn({ err: error, trigger: message.t }, 'pubsub subscriber failed');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.#byTrigger.clear();
    this.#triggers.clear();
    await this.shutdown();
  }

  #guard(): void {
    if (this.closed) throw new Error(`pubsub (${this.kind}) is closed`);
  }
}

/** `redis://`: PUBLISH on one connection, SUBSCRIBE on another (node-redis resubscribes after a reconnection). */
class RedisPubSub extends SharedPubSub {
  protected readonly kind = 'redis';
  readonly #url: string;
  readonly #channel: string;
  #publisher: Promise<RedisClientType> | undefined;
  #publisherClient: RedisClientType | undefined;
  #subscriber: Promise<void> | undefined;
  #subscriberClient: RedisClientType | undefined;

  constructor(url: string, logger: Logger) {
    super(logger);
    this.#url = url;
    this.#channel = `junction:pubsub:${redisDatabase(url)}`;
  }

  async #client(): Promise<RedisClientType> {
    const { createClient } = await import('@redis/client');
    // No offline queue: while Redis is unreachable a publish fails at once instead of waiting.
    const client = createClient({ url: this.#url, disableOfflineQueue: true, socket: { connectTimeout: CONNECT_TIMEOUT_MS } }) as RedisClientType;
    let reported = false;
    client.on('error', (error: unknown) => {
      // Once per outage, not once per reconnection attempt.
      if (!reported && !this.closed) this.logger.warn({ err: error }, 'pubsub (redis) connection lost; reconnecting');
      reported = true;
    });
    client.on('ready', () => (reported = false));
    await withTimeout(client.connect(), `pubsub: Redis (${redactUrl(this.#url)}) is unreachable`).catch((error: unknown) => {
      client.destroy();
      throw error;
    });
    return client;
  }

  protected connectPublisher(): Promise<void> {
    return this.#connectedPublisher().then(() => undefined);
  }

  #connectedPublisher(): Promise<RedisClientType> {
    if (this.#publisher) return this.#publisher;
    const publisher = this.#client().then((client) => {
      if (this.closed) {
        client.destroy();
        throw new Error('pubsub (redis) is closed');
      }
      return (this.#publisherClient = client);
    });
    this.#publisher = publisher;
    publisher.catch(() => {
      if (this.#publisher === publisher) this.#publisher = undefined; // the next call tries again
    });
    return publisher;
  }

  protected async send(message: string): Promise<void> {
    const client = await this.#connectedPublisher();
    await client.publish(this.#channel, message);
  }

  protected listen(): Promise<void> {
    if (this.#subscriber) return this.#subscriber;
    const subscriber = (async () => {
      const client = await this.#client();
      if (this.closed) return void client.destroy();
      this.#subscriberClient = client;
      await client.subscribe(this.#channel, (message) => this.deliver(message));
    })();
    this.#subscriber = subscriber;
    subscriber.catch(() => {
      if (this.#subscriber !== subscriber) return;
      this.#subscriber = undefined;
      const client = this.#subscriberClient;
      this.#subscriberClient = undefined;
      if (client?.isOpen) client.destroy();
    });
    return subscriber;
  }

  protected async shutdown(): Promise<void> {
    await Promise.all([this.#publisher, this.#subscriber].map((p) => p?.catch(() => undefined)));
    for (const client of [this.#subscriberClient, this.#publisherClient]) {
      if (client?.isReady) await client.close().catch(() => client.destroy());
      else if (client?.isOpen) client.destroy();
    }
  }
}

const require = createRequire(import.meta.url);
const postgres = () => require('pg') as typeof pg;

/**
 * `postgres://`: `pg_notify` through a small pool, `LISTEN` on one connection of its own; a lost
 * listening connection is replaced after a second (while anyone here subscribes).
 */
class PostgresPubSub extends SharedPubSub {
  protected readonly kind = 'postgres';
  readonly #url: string;
  #pool: pg.Pool | undefined;
  /** The channel, once the pool has answered `current_schema()`. */
  #channel: Promise<string> | undefined;
  #listener: { client: pg.Client; up: Promise<void> } | undefined;
  #retry: NodeJS.Timeout | undefined;

  constructor(url: string, logger: Logger) {
    super(logger);
    this.#url = url;
  }

  #opened(): Promise<string> {
    if (this.closed) return Promise.reject(new Error('pubsub (postgres) is closed'));
    if (!this.#pool) {
      this.#pool = new (postgres().Pool)({ connectionString: this.#url, max: 4, idleTimeoutMillis: 30_000, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
      this.#pool.on('error', () => {}); // an idle client's connection dropped: the pool replaces it
    }
    const pool = this.#pool;
    if (this.#channel) return this.#channel;
    const channel = pool.query<{ schema: string | null }>('SELECT current_schema() AS schema').then(
      ({ rows }) => `junction_pubsub.${rows[0]?.schema ?? 'public'}`.slice(0, 63),
      (error: unknown) => {
        throw new Error(`pubsub: PostgreSQL (${redactUrl(this.#url)}) is unreachable: ${(error as Error).message}`);
      },
    );
    this.#channel = channel;
    channel.catch(() => {
      if (this.#channel === channel) this.#channel = undefined; // the next call tries again
    });
    return channel;
  }

  protected async connectPublisher(): Promise<void> {
    await this.#opened();
  }

  protected async send(message: string): Promise<void> {
    const bytes = Buffer.byteLength(message);
    if (bytes >= NOTIFY_PAYLOAD_LIMIT) {
      const trigger = (JSON.parse(message) as Message).t;
      throw new Error(
        `pubsub (postgres): the message published on "${trigger}" is ${bytes} bytes as JSON; PostgreSQL NOTIFY carries fewer than ${NOTIFY_PAYLOAD_LIMIT}. ` +
          'Publish less (an id to read the rest by), or use a redis:// pubsub.',
      );
    }
    const channel = await this.#opened();
    await this.#pool!.query('SELECT pg_notify($1, $2)', [channel, message]);
  }

  protected listen(): Promise<void> {
    if (this.#listener) return this.#listener.up;
    const client = new (postgres().Client)({ connectionString: this.#url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    const up = (async () => {
      const channel = await this.#opened();
      client.on('notification', (message) => {
        if (message.channel === channel && message.payload !== undefined) this.deliver(message.payload);
      });
      await client.connect();
      await client.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
    })();
    const listener = { client, up };
    this.#listener = listener;
    let reported = false;
    const lost = (error?: unknown) => {
      if (this.#listener !== listener) return;
      this.#listener = undefined;
      client.end().catch(() => undefined);
      if (this.closed) return;
      if (!reported && error) this.logger.warn({ err: error }, 'pubsub (postgres) listening connection lost; reconnecting');
      reported = true;
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => {
        if (!this.closed && this.listened) this.listen().catch(() => undefined);
      }, RELISTEN_MS);
      this.#retry.unref();
    };
    client.on('error', lost);
    client.on('end', () => lost(new Error('connection ended')));
    up.catch(lost);
    return up;
  }

  protected async shutdown(): Promise<void> {
    clearTimeout(this.#retry);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.up.catch(() => undefined);
    await listener?.client.end().catch(() => undefined);
    await this.#pool?.end().catch(() => undefined);
  }
}

/** The database number of a redis:// URL (its path), 0 by default. */
function redisDatabase(url: string): number {
  try {
    const db = Number(new URL(url).pathname.slice(1) || '0');
    return Number.isInteger(db) && db >= 0 ? db : 0;
  } catch {
    return 0;
  }
}

function withTimeout<T>(promise: Promise<T>, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), CONNECT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
