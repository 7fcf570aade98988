import type { RedisClientType } from '@redis/client';
import { createHash, randomUUID } from 'node:crypto';
import type { EventLog, EventQuery, EventSourceStats, IdempotencyKeys, NewEvent, StoredEvent } from '../../connectors/runtime/contract.ts';
import {
  checkQuery, closedGuard, DEFAULT_PRUNE_EVERY, type EventLogOptions, type EventLogStore, payloadText, PruneSchedule, pruneTimer, Watchers,
} from './common.ts';
import { CursorExpiredError, InvalidCursorError } from './errors.ts';
import type { Retention } from './retention.ts';
import { redactUrl } from '../secrets.ts';

// Shared Lua: stream ids compared as (milliseconds, sequence).
const ID_LUA = `
local function parse(id) local ms, seq = string.match(id, '^(%d+)-(%d+)$'); return tonumber(ms), tonumber(seq) end
local function lt(a, b) local am, as = parse(a); local bm, bs = parse(b); return am < bm or (am == bm and as < bs) end
`;

// KEYS: stream, dedupe key, sources set. ARGV: type, deliveryId, receivedAt, payload, dedupe TTL ms, channel, source.
// Dedupe, XADD and the wake-up in one step: a redelivery never reaches the stream.
const APPEND = `
local existing = redis.call('GET', KEYS[2])
if existing then
  local found = redis.call('XRANGE', KEYS[1], existing, existing)
  if found[1] then return { 0, existing, found[1][2] } end
  return { 0, existing }
end
local id = redis.call('XADD', KEYS[1], '*', 'type', ARGV[1], 'deliveryId', ARGV[2], 'receivedAt', ARGV[3], 'payload', ARGV[4])
redis.call('SET', KEYS[2], id, 'PX', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[7])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return { 1, id }
`;

// KEYS: stream, pruned hash. ARGV: source, after ('' = from the start), count.
// One batch and the pruning mark, read together: the mark decides whether the cursor expired.
const READ = `${ID_LUA}
local pruned = redis.call('HGET', KEYS[2], ARGV[1])
local after = ARGV[2]
if after ~= '' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    if after ~= '0-0' then return { 'ahead' } end
  else
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' and lt(info[i + 1], after) then return { 'ahead' } end
    end
  end
  if pruned and lt(after, pruned) then
    local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
    return { 'expired', oldest[1] and oldest[1][1] or false }
  end
end
local from = after == '' and '-' or '(' .. after
return { 'ok', redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ARGV[3]) }
`;

// KEYS: stream, pruned hash. ARGV: source, maxEvents, maxAgeMs. Removes a prefix of the stream
// (by count, and every entry older than maxAgeMs by the server's clock) and raises the mark.
const PRUNE = `${ID_LUA}
local upto = false
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[2])
if excess > 0 then
  local r = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  upto = r[#r][1]
end
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])
if cutoff > 0 then
  local old = redis.call('XREVRANGE', KEYS[1], '(' .. string.format('%.0f', cutoff) .. '-0', '-', 'COUNT', 1)
  if old[1] and (not upto or lt(upto, old[1][1])) then upto = old[1][1] end
end
if not upto then return 0 end
local ms, seq = parse(upto)
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f', ms) .. '-' .. string.format('%.0f', seq + 1))
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if not prev or lt(prev, upto) then redis.call('HSET', KEYS[2], ARGV[1], upto) end
return 1
`;

type Reply = unknown;

/** Settles a claim on an idempotency key, if it is still this claim's. */
const SETTLE_KEY = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return 0`;
/** Releases a claim on an idempotency key, if it is still this claim's. */
const RELEASE_KEY = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0`;

/** How long connecting may take before an operation fails (the client keeps reconnecting). */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Redis Streams: one stream per source, `<prefix>:events:<source>`; ids are the stream ids
 * (`<ms>-<seq>`), which Redis assigns in order as it appends, so a reader never finds a new
 * entry below one it has seen. Dedupe keys (`<prefix>:events-dedupe:<source>:<deliveryId>`,
 * kept as long as `maxAgeMs`) and XADD run in one script, which also PUBLISHes the source on
 * `<prefix>:events`: a subscriber connection per log wakes the watchers of every instance.
 * Durable as the Redis server is configured: `appendonly yes` with `appendfsync always` for an
 * fsync per append (`everysec` can lose the last second on a crash of the Redis machine).
 */
export class RedisEventLog implements EventLog, EventLogStore {
  readonly kind = 'redis' as const;
  readonly #url: string;
  readonly #retention: Retention;
  readonly #options: EventLogOptions;
  readonly #prefix: string;
  readonly #watchers = new Watchers();
  readonly #schedule: PruneSchedule;
  readonly #shas = new Map<string, string>();
  #client: RedisClientType | undefined;
  #connecting: Promise<RedisClientType> | undefined;
  #subscriber: Promise<void> | undefined;
  #subscriberClient: RedisClientType | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(url: string, retention: Retention, options: EventLogOptions = {}) {
    this.#url = url;
    this.#retention = retention;
    this.#options = options;
    this.#prefix = options.prefix ?? 'junction';
    this.#schedule = new PruneSchedule(options.pruneEvery ?? DEFAULT_PRUNE_EVERY);
  }

  #stream(source: string): string {
    return `${this.#prefix}:events:${source}`;
  }

  get #channel(): string {
    return `${this.#prefix}:events`;
  }

  async #newClient(): Promise<RedisClientType> {
    const { createClient } = await import('@redis/client');
    // No offline queue: while Redis is unreachable an append fails at once (the webhook sender or
    // the broker retries) instead of waiting, unacknowledged, in memory.
    const client = createClient({ url: this.#url, disableOfflineQueue: true, socket: { connectTimeout: CONNECT_TIMEOUT_MS } }) as RedisClientType;
    client.on('error', () => {}); // reconnects by itself; operations meanwhile fail
    return client;
  }

  async #open(): Promise<RedisClientType> {
    closedGuard(this.#closed);
    if (this.#client?.isReady) return this.#client;
    this.#connecting ??= (async () => {
      const client = (this.#client ??= await this.#newClient());
      if (!client.isOpen) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the event log's Redis (${redactUrl(this.#url)}) is unreachable`)), CONNECT_TIMEOUT_MS);
        });
        await Promise.race([client.connect(), timeout]).finally(() => clearTimeout(timer));
      }
      this.#timer ??= pruneTimer(this.#options, () => this.prune(), () => {});
      return client;
    })().finally(() => (this.#connecting = undefined));
    const client = await this.#connecting;
    if (!client.isReady) throw new Error(`the event log's Redis (${redactUrl(this.#url)}) is unreachable`);
    return client;
  }

  async #script(client: RedisClientType, script: string, keys: string[], args: string[]): Promise<Reply> {
    let sha = this.#shas.get(script);
    if (!sha) this.#shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
    try {
      return await client.sendCommand(['EVALSHA', sha, String(keys.length), ...keys, ...args]);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return client.sendCommand(['EVAL', script, String(keys.length), ...keys, ...args]);
    }
  }

  readonly keys: IdempotencyKeys = {
    // `pending:<token>` while claimed, `done:<value>` once settled; Redis expires both.
    claim: async (key, leaseMs) => {
      const client = await this.#open();
      const token = randomUUID();
      const name = `${this.#prefix}:idempotency:${key}`;
      if (String(await client.sendCommand(['SET', name, `pending:${token}`, 'NX', 'PX', String(leaseMs)])) === 'OK') return { state: 'claimed', token };
      const held = (await client.sendCommand(['GET', name])) as string | null;
      return held?.startsWith('done:') ? { state: 'settled', value: held.slice('done:'.length) } : { state: 'pending' };
    },
    settle: async (key, token, value, ttlMs) => {
      const client = await this.#open();
      await this.#script(client, SETTLE_KEY, [`${this.#prefix}:idempotency:${key}`], [`pending:${token}`, `done:${value}`, String(ttlMs)]);
    },
    release: async (key, token) => {
      const client = await this.#open();
      await this.#script(client, RELEASE_KEY, [`${this.#prefix}:idempotency:${key}`], [`pending:${token}`]);
    },
  };

  async append(event: NewEvent): Promise<{ event: StoredEvent; duplicate: boolean }> {
    const client = await this.#open();
    const receivedAt = event.receivedAt ?? new Date();
    const payload = payloadText(event.payload);
    const reply = (await this.#script(
      client,
      APPEND,
      [this.#stream(event.source), `${this.#prefix}:events-dedupe:${event.source}:${event.deliveryId}`, `${this.#prefix}:events-sources`],
      [event.type, event.deliveryId, String(receivedAt.getTime()), payload, String(this.#retention.maxAgeMs), this.#channel, event.source],
    )) as [number, string, string[]?];
    const [stored, id, fields] = reply;
    if (Number(stored) === 0) {
      // The first delivery's entry, or, when retention has removed it, what this one carries.
      const event0 = fields ? toEvent(event.source, id, fields) : { ...fromNew(event, receivedAt, payload), id };
      return { event: event0, duplicate: true };
    }
    // Awaited, so a read after the append sees retention applied; the event is stored either
    // way, so a failed pruning (retried on the next one) does not fail the append.
    if (this.#schedule.due(event.source)) await this.prune(event.source).catch(() => undefined);
    return { event: { ...fromNew(event, receivedAt, payload), id }, duplicate: false };
  }

  async read(query: EventQuery): Promise<StoredEvent[]> {
    checkQuery(query);
    if (query.after !== undefined && !/^\d{1,20}-\d{1,20}$/.test(query.after)) {
      throw new InvalidCursorError(query.source, query.after, 'expected an event id of this source (<milliseconds>-<sequence>)');
    }
    const client = await this.#open();
    const types = query.types ? new Set(query.types) : undefined;
    const events: StoredEvent[] = [];
    // With a types filter, batches are read until the page is full or the stream ends; every
    // batch checks the pruning mark against where it starts.
    let cursor = query.after ?? '';
    const batch = String(types ? Math.max(query.limit, 100) : query.limit);
    while (events.length < query.limit) {
      const reply = (await this.#script(client, READ, [this.#stream(query.source), `${this.#prefix}:events-pruned`], [query.source, cursor, batch])) as [string, unknown];
      if (reply[0] === 'ahead') throw new InvalidCursorError(query.source, query.after!, 'no event of this source has that id yet');
      if (reply[0] === 'expired') throw new CursorExpiredError(query.source, query.after ?? cursor, (reply[1] as string | null) || null);
      const entries = reply[1] as [string, string[]][];
      for (const [id, fields] of entries) {
        const event = toEvent(query.source, id, fields);
        if (!types || types.has(event.type)) events.push(event);
        if (events.length === query.limit) break;
      }
      if (entries.length < Number(batch)) break;
      cursor = entries[entries.length - 1]![0];
    }
    return events;
  }

  async sources(): Promise<EventSourceStats[]> {
    const client = await this.#open();
    const sources = ((await client.sendCommand(['SMEMBERS', `${this.#prefix}:events-sources`])) as string[]).sort();
    return Promise.all(
      sources.map(async (source) => {
        const [count, newest] = await Promise.all([
          client.sendCommand(['XLEN', this.#stream(source)]) as Promise<number>,
          client.sendCommand(['XREVRANGE', this.#stream(source), '+', '-', 'COUNT', '1']) as Promise<[string, string[]][]>,
        ]);
        return { source, latest: newest[0]?.[0] ?? null, count: Number(count) };
      }),
    );
  }

  watch(source: string, listener: () => void): () => void {
    closedGuard(this.#closed);
    const stop = this.#watchers.add(source, listener);
    void this.watching().catch(() => undefined);
    return stop;
  }

  /**
   * Resolves once other instances' appends wake this log's watchers (subscribed). When the
   * subscription is (re)established every watcher is woken, for what it may have missed.
   */
  watching(): Promise<void> {
    this.#subscriber ??= (async () => {
      const client = await this.#open();
      const subscriber = client.duplicate();
      subscriber.on('error', () => {});
      subscriber.on('ready', () => this.#watchers.wakeAll());
      this.#subscriberClient = subscriber as RedisClientType;
      await subscriber.connect();
      if (this.#closed) return void subscriber.destroy();
      await subscriber.subscribe(this.#channel, (source) => this.#watchers.wake(source));
      this.#watchers.wakeAll();
    })();
    this.#subscriber.catch(() => {
      this.#subscriber = undefined;
      const client = this.#subscriberClient;
      this.#subscriberClient = undefined;
      if (client?.isOpen) client.destroy();
    });
    return this.#subscriber;
  }

  async prune(source?: string): Promise<void> {
    const client = await this.#open();
    const sources = source !== undefined ? [source] : ((await client.sendCommand(['SMEMBERS', `${this.#prefix}:events-sources`])) as string[]);
    for (const one of sources) {
      await this.#script(client, PRUNE, [this.#stream(one), `${this.#prefix}:events-pruned`], [one, String(this.#retention.maxEvents), String(this.#retention.maxAgeMs)]);
    }
  }


  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#watchers.clear();
    for (const client of [this.#subscriberClient, this.#client]) {
      if (client?.isReady) await client.close().catch(() => client.destroy());
      else if (client?.isOpen) client.destroy();
    }
  }
}

function fromNew(event: NewEvent, receivedAt: Date, payload: string): Omit<StoredEvent, 'id'> {
  return { source: event.source, type: event.type, deliveryId: event.deliveryId, receivedAt: receivedAt.toISOString(), payload: JSON.parse(payload) };
}

function toEvent(source: string, id: string, fields: string[]): StoredEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return {
    id,
    source,
    type: f.type ?? '',
    deliveryId: f.deliveryId ?? '',
    receivedAt: new Date(Number(f.receivedAt)).toISOString(),
    payload: JSON.parse(f.payload ?? 'null'),
  };
}
