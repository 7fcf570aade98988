import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { RedisClientType } from '@redis/client';
import type redisModule from '@redis/client';
import {
  BrokerConnector,
  brokerOptions,
  connectorConfig,
  type ConnectorDeps,
  type InboundMessage,
  IntakeAbortedError,
  type OutboundMessage,
  positiveInt,
  type PublishConfirm,
  str,
  UpstreamError,
  urlParts,
  z,
} from '../../src/index.ts';

// node-redis loads with the first redis connector: `junction check` and hubs without one do not pay for it.
const require = createRequire(import.meta.url);
let loaded: typeof redisModule | undefined;
const redis = () => (loaded ??= require('@redis/client') as typeof redisModule);

type Client = RedisClientType;

const URL_EXPECTED = 'expected a redis:// or rediss:// URL';
/** Longest stream name taken, in `consume` and as a `@publish` destination. */
export const MAX_STREAM_LENGTH = 256;
/** What a stream name must not hold: control characters, white space, glob characters. */
const BAD_STREAM_CHARS = /[\s\p{Cc}*?[\]]/u;
/** A consumer or group name: no white space or control characters (it is part of a CLIENT SETNAME). */
const NAME = /^[^\s\p{Cc}]+$/u;
/** Longest pause between two attempts while Redis is unreachable. */
const MAX_BACKOFF_MS = 2_000;
/** How often the lag is read while nothing arrives. */
const LAG_EVERY_MS = 5_000;
/** Pause before a message that could not be stored is read again. */
const RETRY_PAUSE_MS = 200;

/** Why `name` is not a stream this connector takes; undefined when it is. */
export function streamProblem(name: string): string | undefined {
  if (name.length === 0) return 'a stream name is not empty';
  if (name.length > MAX_STREAM_LENGTH) return `a stream name is at most ${MAX_STREAM_LENGTH} characters`;
  if (BAD_STREAM_CHARS.test(name)) return 'a stream name has no white space, control characters or glob characters (* ? [ ])';
  return undefined;
}

const streamName = z.string({ error: 'expected a stream name' }).superRefine((value, ctx) => {
  const problem = streamProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `expected a stream name: ${problem}` });
});
const name = (what: string) => str(what).regex(NAME, { error: `expected ${what} without white space` }).max(200, { error: `expected ${what} of at most 200 characters` });

export const redisConfigSchema = connectorConfig({
  /**
   * `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). A password in the URL is a
   * secret, like everything under `auth`.
   */
  url: z.string({ error: URL_EXPECTED }).superRefine((value, ctx) => {
    // Names the scheme at most, never the URL: it may hold a password.
    const { scheme, url } = urlParts(value);
    if ((scheme === 'redis' || scheme === 'rediss') && url?.hostname) {
      if (!/^\/?\d*$/.test(url.pathname) || url.search || url.hash) {
        ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED}: no path but a database number (/0), no query`, params: { complete: true } });
      }
      return;
    }
    const got = scheme ? `a ${scheme === 'redis' || scheme === 'rediss' ? 'malformed ' : ''}"${scheme}:" URL` : 'no URL scheme';
    ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED}, got ${got}`, params: { complete: true } });
  }),
  /**
   * Default []. The streams consumed, each through a consumer group: `{ stream, group, start }`;
   * `start` (default `oldest`) is where a group the hub creates begins: `oldest` (every entry
   * already in the stream) or `new` (entries added from then on).
   */
  consume: z
    .array(
      z.strictObject({
        stream: streamName,
        group: name('a consumer group name'),
        start: z.enum(['oldest', 'new'], { error: 'expected oldest or new' }).default('oldest'),
      }),
      { error: 'expected a list of { stream, group }' },
    )
    .default([]),
  /**
   * Default `<hostname>-<pid>`. This hub's consumer name in every group. A restarted hub with the
   * same name reads its own pending entries again at once; under another name they are claimed
   * after `claimIdleMs`.
   */
  consumer: name('a consumer name').optional(),
  /** Default 30000. Entries pending this long with another consumer (a hub that died) are claimed and delivered here. */
  claimIdleMs: positiveInt().default(30_000),
  /** Default 16. Entries read (or claimed) per command. */
  batch: positiveInt().default(16),
  /** Default 2000. How long one XREADGROUP waits for new entries before it is sent again. */
  blockMs: positiveInt().default(2_000),
  ...brokerOptions,
}).superRefine((c, ctx) => {
  // Key names only in these messages, never a value: `params.complete` stops the loader adding one.
  if (c.auth && c.auth.type !== 'basic') {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'type'],
      message: `expected basic (Redis AUTH with username and password) for a redis connector, got ${c.auth.type}`,
      params: { complete: true },
    });
  }
  if (c.auth && URL.canParse(c.url) && (new URL(c.url).username || new URL(c.url).password)) {
    ctx.addIssue({ code: 'custom', path: ['auth'], message: 'expected credentials in the url or in auth, not both', params: { complete: true } });
  }
  if (c.cache) {
    ctx.addIssue({ code: 'custom', path: ['cache'], message: 'does not apply to a redis connector: publishing is never cached', params: { complete: true } });
  }
  if (Object.keys(c.headers).length > 0) {
    ctx.addIssue({ code: 'custom', path: ['headers'], message: 'does not apply to a redis connector (Redis has no headers)', params: { complete: true } });
  }
  const seen = new Set<string>();
  c.consume.forEach((entry, i) => {
    const key = `${entry.stream}\0${entry.group}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['consume', i], message: 'expected each { stream, group } once', params: { complete: true } });
    seen.add(key);
  });
});
export type RedisConfig = z.output<typeof redisConfigSchema>;

/** One consume entry's loop and its own blocking connection. */
interface Consumer {
  stream: string;
  group: string;
  start: 'oldest' | 'new';
  reader: Client;
  /** The reader connection's Redis client id (CLIENT UNBLOCK), per connection. */
  clientId: number | undefined;
  groupReady: boolean;
  /** Read this consumer's own pending entries before new ones (after a start, a reconnection, a retry). */
  reread: boolean;
  /** Not before (ms since epoch). */
  rereadAt: number;
  nextClaim: number;
  lag: number | null;
  loop: Promise<void> | undefined;
}

type Fields = Map<string, Buffer>;
type Entry = { id: string; fields: Fields };

/**
 * Redis Streams: each `consume` entry is read through its consumer group (XREADGROUP, one
 * blocking connection each), stored in the event log, then XACKed. Entries that stay pending
 * (this hub's own after a reconnection or a retry; another consumer's after `claimIdleMs`) are
 * taken with XCLAIM and delivered again, their delivery count from XPENDING. `@publish` is one
 * XADD, its entry id the receipt.
 */
export class RedisConnector extends BrokerConnector<RedisConfig> {
  readonly consumerName: string;
  #cmd: Client | undefined;
  readonly #consumers: Consumer[] = [];
  /** Clients not ready now. */
  readonly #down = new Set<Client>();
  #lagTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(name: string, config: RedisConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.consumerName = config.consumer ?? `${hostname().replace(/[\s\p{Cc}]/gu, '_')}-${process.pid}`;
  }

  override async start(): Promise<void> {
    const { createClient } = redis();
    const cmd = createClient({
      url: this.config.url,
      ...(this.config.auth?.type === 'basic' && { username: this.config.auth.username, password: this.config.auth.password }),
      name: `junction:${this.name}:${this.consumerName}`.replace(/\s/g, '_'),
      // While Redis is unreachable a command fails at once (the loop backs off, a publish answers
      // UPSTREAM_ERROR) instead of waiting in memory.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: this.config.timeoutMs,
        reconnectStrategy: (retries: number) => (this.#stopped ? false : Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(retries, 6)) + Math.floor(Math.random() * 100)),
      },
    }) as Client;
    this.#cmd = cmd;
    this.#watch(cmd, 'commands');
    for (const entry of this.config.consume) {
      const reader = cmd.duplicate({ name: `junction:${this.name}:${this.consumerName}:${entry.stream}`.replace(/\s/g, '_').slice(0, 300) }) as Client;
      const consumer: Consumer = {
        ...entry,
        reader,
        clientId: undefined,
        groupReady: false,
        reread: true,
        rereadAt: 0,
        nextClaim: 0,
        lag: null,
        loop: undefined,
      };
      this.#watch(reader, `stream ${entry.stream}`, () => {
        consumer.clientId = undefined;
        consumer.reread = true;
      });
      this.#consumers.push(consumer);
    }
    const clients = [cmd, ...this.#consumers.map((c) => c.reader)];
    for (const client of clients) {
      this.#down.add(client);
      client.connect().catch(() => undefined); // errors are reported through the 'error' events
    }
    // Serve without Redis too: the connector shows unhealthy and connects in the background.
    const deadline = Date.now() + this.config.timeoutMs;
    while (this.#down.size > 0 && Date.now() < deadline && !this.stopping.aborted) await sleep(25);
    if (this.#down.size > 0) this.connectionLost(new Error(`not connected to Redis within ${this.config.timeoutMs} ms; still trying`));
    for (const consumer of this.#consumers) consumer.loop = this.#run(consumer);
    if (this.#consumers.length > 0) {
      this.#lagTimer = setInterval(() => void this.#refreshLag(), LAG_EVERY_MS);
      this.#lagTimer.unref();
    }
  }

  /** Maps a client's connection events to the connector's health. */
  #watch(client: Client, what: string, onReconnect?: () => void): void {
    let lost = false;
    const down = (error: unknown) => {
      if (this.#stopped) return;
      this.#down.add(client);
      onReconnect?.();
      if (!lost) this.deps.logger.warn({ err: error, connection: what }, 'redis connection lost; reconnecting');
      lost = true;
      this.connectionLost(error);
    };
    client.on('error', down);
    client.on('end', () => down(new Error('connection closed')));
    client.on('ready', () => {
      if (this.#stopped) return;
      if (lost) this.deps.logger.info({ connection: what }, 'redis connection back');
      lost = false;
      onReconnect?.();
      this.#down.delete(client);
      // Whatever this hub had in hand when the commands connection dropped may be unacknowledged.
      if (client === this.#cmd) for (const c of this.#consumers) c.reread = true;
      if (this.#down.size === 0) this.connectionUp();
    });
  }

  /** One consume entry: own pending entries first, idle ones of other consumers now and then, then new ones. */
  async #run(c: Consumer): Promise<void> {
    let failures = 0;
    while (!this.stopping.aborted) {
      try {
        if (!c.groupReady) await this.#ensureGroup(c);
        if (c.reread && Date.now() >= c.rereadAt) {
          c.reread = false;
          await this.#redeliver(c, true);
        }
        if (Date.now() >= c.nextClaim) {
          c.nextClaim = Date.now() + Math.max(100, Math.min(this.config.claimIdleMs / 2, 30_000));
          if (await this.#redeliver(c, false)) c.nextClaim = 0; // a full page: there may be more
          await this.#forgetIdleConsumers(c);
        }
        if (this.stopping.aborted) break;
        if (c.clientId === undefined) c.clientId = Number(await c.reader.sendCommand(['CLIENT', 'ID']));
        // Back in time for the next claim pass or re-read: they run between two reads.
        const until = Math.min(c.nextClaim, c.reread ? c.rereadAt : Infinity) - Date.now();
        const block = Math.max(1, Math.min(this.config.blockMs, until));
        const reply = await c.reader.sendCommand(
          ['XREADGROUP', 'GROUP', c.group, this.consumerName, 'COUNT', String(this.config.batch), 'BLOCK', String(block), 'STREAMS', c.stream, '>'],
          { typeMapping: BUFFERS() },
        );
        const entries = readGroupEntries(reply);
        if (entries.length > 0) {
          await this.#handle(c, entries.map((e) => ({ ...e, deliveries: 1 })), false);
          void this.#refreshLag();
        }
        failures = 0;
      } catch (error) {
        if (this.stopping.aborted || error instanceof IntakeAbortedError) break;
        c.reread = true;
        const message = error instanceof Error ? error.message : String(error);
        if (message.startsWith('NOGROUP')) c.groupReady = false;
        if (failures === 0 && this.#down.size === 0) this.deps.logger.warn({ err: error, stream: c.stream, group: c.group }, 'reading the stream failed; retrying');
        await this.backoff(failures++, 100, MAX_BACKOFF_MS);
      }
    }
  }

  /** XGROUP CREATE … MKSTREAM, unless the group exists. */
  async #ensureGroup(c: Consumer): Promise<void> {
    try {
      await this.#command(['XGROUP', 'CREATE', c.stream, c.group, c.start === 'oldest' ? '0' : '$', 'MKSTREAM']);
      this.deps.logger.info({ stream: c.stream, group: c.group, start: c.start }, 'consumer group created');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
    c.groupReady = true;
  }

  /**
   * Delivers pending entries again: this consumer's own (`own`), or any consumer's pending for at
   * least `claimIdleMs`. XPENDING gives their ids and delivery counts, XCLAIM takes them (and
   * counts one more delivery). Returns whether a full page was found.
   */
  async #redeliver(c: Consumer, own: boolean): Promise<boolean> {
    let start = '-';
    for (;;) {
      const args = own
        ? ['XPENDING', c.stream, c.group, start, '+', String(this.config.batch), this.consumerName]
        : ['XPENDING', c.stream, c.group, 'IDLE', String(this.config.claimIdleMs), start, '+', String(this.config.batch)];
      const rows = (await this.#command(args)) as [string, string, number, number][];
      if (rows.length === 0) return false;
      const counts = new Map(rows.map(([id, , , count]) => [id, Number(count)]));
      const claimed = (await this.#command(
        ['XCLAIM', c.stream, c.group, this.consumerName, own ? '0' : String(this.config.claimIdleMs), ...counts.keys()],
        BUFFERS(),
      )) as unknown[];
      const entries = claimed.flatMap((raw) => {
        const entry = toEntry(raw);
        return entry ? [{ ...entry, deliveries: (counts.get(entry.id) ?? 0) + 1 }] : [];
      });
      if (entries.length > 0) {
        if (!own) this.deps.logger.info({ stream: c.stream, count: entries.length }, 'claimed entries left pending by another consumer');
        await this.#handle(c, entries, true);
      }
      if (rows.length < this.config.batch || !own) return rows.length >= this.config.batch;
      start = `(${rows.at(-1)![0]}`;
    }
  }

  /** Removes consumers of the group that hold nothing and were idle over `claimIdleMs` (hubs gone), in one atomic step. */
  async #forgetIdleConsumers(c: Consumer): Promise<void> {
    await this.#command(['EVAL', FORGET_IDLE, '1', c.stream, c.group, this.consumerName, String(Math.max(this.config.claimIdleMs, 60_000))]).catch(
      (error: unknown) => this.deps.logger.debug({ err: error }, 'removing idle consumers failed'),
    );
  }

  /** Intake, in order, then XACK each settled entry; a `retry` stays pending and is read again. */
  async #handle(c: Consumer, entries: (Entry & { deliveries: number })[], redelivered: boolean): Promise<void> {
    for (const entry of entries) {
      if (this.stopping.aborted) return; // the rest stays pending, for redelivery
      let outcome;
      try {
        outcome = await this.intake(toMessage(c, entry, redelivered));
      } catch (error) {
        if (error instanceof IntakeAbortedError) return;
        throw error;
      }
      if (outcome === 'retry') {
        c.reread = true;
        c.rereadAt = Date.now() + RETRY_PAUSE_MS;
        continue;
      }
      await this.#command(['XACK', c.stream, c.group, entry.id]);
    }
  }

  /** Lag (entries not yet delivered to the group, Redis ≥ 7) summed over the consumed groups. */
  async #refreshLag(): Promise<void> {
    for (const c of this.#consumers) {
      try {
        const groups = (await this.#command(['XINFO', 'GROUPS', c.stream])) as unknown[][];
        const group = groups.map(pairs).find((g) => String(g.get('name')) === c.group);
        const lag = group?.get('lag');
        c.lag = typeof lag === 'number' ? lag : lag == null ? null : Number(lag);
      } catch {
        // not connected: keep the last known value
      }
    }
    const known = this.#consumers.map((c) => c.lag).filter((l): l is number => l !== null && Number.isFinite(l));
    this.setLag(known.length > 0 ? known.reduce((a, b) => a + b, 0) : null);
  }

  /** A command on the commands connection, given up after `timeoutMs` (a reply may never come). */
  async #command(args: string[], typeMapping?: ReturnType<typeof BUFFERS>): Promise<unknown> {
    const cmd = this.#cmd!;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        cmd.sendCommand(args, typeMapping ? { typeMapping } : undefined),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`redis did not answer ${args[0]} within ${this.config.timeoutMs} ms`)), this.config.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  protected override destinationProblem(to: string): string | undefined {
    return streamProblem(to);
  }

  /** XADD <stream> * payload <json>; the entry id is the confirmation and the receipt's messageId. */
  protected async send(message: OutboundMessage, signal: AbortSignal): Promise<PublishConfirm> {
    const cmd = this.#cmd;
    if (!cmd) throw new UpstreamError(this.name, `${this.name}: not started`, { transient: true });
    try {
      const id = await cmd.sendCommand(['XADD', message.to, '*', 'payload', message.body], { abortSignal: signal });
      return { messageId: String(id) };
    } catch (error) {
      if (signal.aborted) throw error; // the pipeline makes it UPSTREAM_TIMEOUT
      const text = this.deps.scrub(error instanceof Error ? error.message : String(error));
      // An error reply (WRONGTYPE, OOM, NOPERM) is Redis refusing this message; anything else is no answer.
      const reply = error instanceof redis().ErrorReply;
      return Promise.reject(
        new UpstreamError(this.name, `${this.name}: ${reply ? 'Redis refused XADD' : 'Redis is unreachable'}: ${text}`, {
          transient: !reply,
          countsAsFailure: !reply || /^(OOM|LOADING|BUSY|MASTERDOWN|READONLY)/.test(text),
        }),
      );
    }
  }

  protected async ping(signal: AbortSignal): Promise<void> {
    const cmd = this.#cmd;
    if (!cmd) throw new Error('not started');
    await Promise.race([
      cmd.sendCommand(['PING']),
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
  }

  /**
   * Ends the blocked XREADGROUPs without a delivery (CLIENT UNBLOCK … TIMEOUT), so no entry is
   * handed to a hub that is closing; the loops stop after the entry in hand.
   */
  protected async stopConsuming(): Promise<void> {
    await Promise.all(
      this.#consumers.map(async (c) => {
        if (c.clientId === undefined) return;
        await this.#command(['CLIENT', 'UNBLOCK', String(c.clientId), 'TIMEOUT']).catch(() => undefined);
      }),
    );
  }

  /** Waits for the loops (their last XACKs), then closes every connection. */
  protected async disconnect(): Promise<void> {
    clearInterval(this.#lagTimer);
    const loops = Promise.allSettled(this.#consumers.map((c) => c.loop));
    await Promise.race([loops, sleep(this.config.timeoutMs + this.config.blockMs)]);
    this.#stopped = true;
    for (const client of [this.#cmd, ...this.#consumers.map((c) => c.reader)]) {
      try {
        client?.destroy();
      } catch {
        // already closed
      }
    }
  }
}

/** KEYS: stream. ARGV: group, this consumer, min idle ms. Deletes consumers with nothing pending idle that long. */
const FORGET_IDLE = `
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0 and tonumber(f['idle']) >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n
`;

/** Bulk strings as Buffers: a payload's bytes reach the event log unchanged (its UTF-8 check included). */
const BUFFERS = () => ({ [redis().RESP_TYPES.BLOB_STRING]: Buffer }) as const;

/** `[[stream, [[id, [field, value, …]], …]]]` (or null) → entries. */
function readGroupEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply)) return [];
  return reply.flatMap((stream) => {
    const list = Array.isArray(stream) ? (stream[1] as unknown[]) : [];
    return list.flatMap((raw) => {
      const entry = toEntry(raw);
      return entry ? [entry] : [];
    });
  });
}

/** `[id, [field, value, …]]` → an entry; null (deleted) → undefined. */
function toEntry(raw: unknown): Entry | undefined {
  if (!Array.isArray(raw) || raw[1] == null) return undefined;
  const flat = raw[1] as Buffer[];
  const fields: Fields = new Map();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), Buffer.from(flat[i + 1]!));
  return { id: String(raw[0]), fields };
}

/**
 * The message an entry makes (SPEC §6): type = field `type`, else the stream; delivery id = the
 * entry id; body = field `payload` (JSON text), else every field as a JSON object of strings.
 */
export function toMessage(c: { stream: string; group: string }, entry: Entry & { deliveries: number }, redelivered: boolean): InboundMessage {
  const type = entry.fields.get('type')?.toString('utf8') ?? c.stream;
  const payload = entry.fields.get('payload');
  const body = payload ?? JSON.stringify(Object.fromEntries([...entry.fields].map(([k, v]) => [k, v.toString('utf8')])));
  return {
    type,
    deliveryId: entry.id,
    body: typeof body === 'string' ? body : new Uint8Array(body),
    deliveries: entry.deliveries,
    redelivered: redelivered || entry.deliveries > 1,
    origin: `stream ${c.stream} (group ${c.group})`,
  };
}

/** `[k1, v1, k2, v2]` → a map. */
function pairs(flat: unknown[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
