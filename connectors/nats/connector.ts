import { createRequire } from 'node:module';
import type { ConsumerConfig, ConsumerInfo, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, StreamInfo } from '@nats-io/jetstream';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import {
  BrokerConnector,
  brokerOptions,
  connectorConfig,
  type ConnectorDeps,
  type InboundMessage,
  IntakeAbortedError,
  type IntakeOutcome,
  MAX_ID_LENGTH,
  type OutboundMessage,
  positiveInt,
  type PublishConfirm,
  UpstreamError,
  UpstreamTimeoutError,
  urlParts,
  z,
} from '../../src/index.ts';

// The NATS client loads with the first nats connector: `junction check` and hubs without one do
// not pay for it (about 90 ms).
const require = createRequire(import.meta.url);
let loaded: { transport: typeof import('@nats-io/transport-node'); jetstream: typeof import('@nats-io/jetstream') } | undefined;
const nats = () => (loaded ??= { transport: require('@nats-io/transport-node'), jetstream: require('@nats-io/jetstream') });

const URL_EXPECTED = 'expected a nats:// URL';
/** A stream or durable consumer name: what the JetStream API accepts in a subject token. */
const NAME = /^[^\s.*>/\\\0]+$/;
const NAME_EXPECTED = 'expected a name without spaces, ".", "*", ">", "/" or "\\"';

/** Why `subject` is not a subject a consumer may filter on (wildcards allowed), or undefined. */
function filterProblem(subject: string): string | undefined {
  if (/[\s\0]/.test(subject)) return 'a subject has no whitespace';
  const tokens = subject.split('.');
  if (tokens.some((t) => t === '')) return 'a subject has no empty token (no leading, trailing or double ".")';
  for (const [i, t] of tokens.entries()) {
    if (t.includes('>') && (t !== '>' || i !== tokens.length - 1)) return '">" is a whole token, and the last one';
    if (t.includes('*') && t !== '*') return '"*" is a whole token';
  }
  return undefined;
}

const consumeSchema = z.strictObject({
  /** The JetStream stream. Created with `subjects` when it does not exist; an existing stream is used as it is. */
  stream: z.string({ error: NAME_EXPECTED }).regex(NAME, { error: NAME_EXPECTED }),
  /** The subjects consumed (wildcards `*` and `>` allowed): the consumer's filter, and the new stream's subjects. */
  subjects: z
    .array(
      z.string({ error: 'expected a subject' }).superRefine((s, ctx) => {
        const problem = filterProblem(s);
        if (problem) ctx.addIssue({ code: 'custom', message: `expected a NATS subject: ${problem}` });
      }),
      { error: 'expected a list of subjects' },
    )
    .min(1, { error: 'expected at least one subject' }),
  /** Default: the connector's name. The durable pull consumer, created or updated by the hub. */
  durable: z.string({ error: NAME_EXPECTED }).regex(NAME, { error: NAME_EXPECTED }).optional(),
});

export const natsConfigSchema = connectorConfig({
  /**
   * `nats://host[:port]` (default port 4222). Credentials may be the URL's user-info:
   * `nats://user:password@host` or `nats://token@host` (URL-encoded), secrets like `auth`.
   */
  url: z.string({ error: URL_EXPECTED }).superRefine((value, ctx) => {
    // Names the scheme at most, never the URL: it may hold a password or a token.
    const { scheme, url } = urlParts(value);
    if (scheme === 'nats' && url?.hostname) {
      if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) {
        ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED} without a path or query (options are keys of the connector)`, params: { complete: true } });
      }
      return;
    }
    const got = scheme ? `a ${scheme === 'nats' ? 'malformed ' : ''}"${scheme}:" URL` : 'no URL scheme';
    ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED}, got ${got}`, params: { complete: true } });
  }),
  /** Default []. JetStream streams consumed into the event log: `{ stream, subjects, durable }` each. */
  consume: z.array(consumeSchema, { error: 'expected a list of { stream, subjects, durable }' }).default([]),
  /**
   * Default 30000. The consumer's `ack_wait`: a message delivered and neither acknowledged nor
   * refused within it is delivered again (the hub signals progress while it stores one).
   */
  ackWaitMs: positiveInt().default(30_000),
  /** Default 1000. Delay before a message that could not be stored is redelivered, doubled each time, at most 60 s. */
  redeliveryDelayMs: positiveInt().default(1000),
  /** Default 100. Messages each consumer asks the server for at once (the pull batch, held client-side until handled). */
  prefetch: positiveInt().default(100),
  ...brokerOptions,
}).superRefine((c, ctx) => {
  // Key names only in these messages, never a value: `params.complete` stops the loader adding one.
  if (c.auth && c.auth.type !== 'basic' && c.auth.type !== 'bearer') {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'type'],
      message: `expected basic (user and password) or bearer (a NATS token) for a nats connector, got ${c.auth.type}`,
      params: { complete: true },
    });
  }
  if (c.auth && URL.canParse(c.url) && new URL(c.url).username) {
    ctx.addIssue({ code: 'custom', path: ['auth'], message: 'expected credentials in the url or in auth, not both', params: { complete: true } });
  }
  if (c.cache) {
    ctx.addIssue({ code: 'custom', path: ['cache'], message: 'does not apply to a nats connector: publishing is never cached', params: { complete: true } });
  }
  const durables = new Map<string, number>();
  c.consume.forEach((entry, i) => {
    const key = `${entry.stream}\0${entry.durable ?? ''}`;
    if (durables.has(key)) {
      ctx.addIssue({ code: 'custom', path: ['consume', i], message: `expected each (stream, durable) once; consume[${durables.get(key)}] names the same`, params: { complete: true } });
    }
    durables.set(key, i);
  });
});
export type NatsConfig = z.output<typeof natsConfigSchema>;

type Entry = NatsConfig['consume'][number];

/** Longest pause between two attempts to connect and set the consumers up. */
const MAX_SETUP_BACKOFF_MS = 30_000;
/** Longest delay of a negative acknowledgement (`redeliveryDelayMs` doubled each time). */
const MAX_REDELIVERY_DELAY_MS = 60_000;
/** How often the consumers' lag is read from the server. */
const LAG_INTERVAL_MS = 5_000;

/** One consumed stream: its consumer loop while it runs. */
interface Running {
  entry: Entry;
  durable: string;
  messages: ConsumerMessages;
  loop: Promise<void>;
  /** Why the server cannot serve this consumer now (deleted, stream gone), or null. */
  problem: string | null;
}

/**
 * A NATS server with JetStream behind the pipeline: consumes durable pull consumers into the
 * event log (stored, then acknowledged; `term()`ed once dead-lettered) and publishes `@publish`
 * messages with `js.publish`, answering once JetStream acknowledged them (the PubAck).
 */
export class NatsConnector extends BrokerConnector<NatsConfig> {
  readonly #server: string;
  readonly #credentials: Pick<ConnectionOptions, 'user' | 'pass' | 'token'>;
  /** Decoded user-info values the hub's own scrubbing may not know (a token in the URL). */
  readonly #hidden: string[];
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #connected = false;
  #running: Running[] = [];
  #setup: Promise<void> | undefined;
  #lagTimer: NodeJS.Timeout | undefined;
  #reconnects = 0;
  #reensuring = new Set<Running>();

  constructor(name: string, config: NatsConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    const url = new URL(config.url);
    this.#server = `${url.hostname}:${url.port || 4222}`;
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    if (config.auth?.type === 'basic') this.#credentials = { user: config.auth.username, pass: config.auth.password };
    else if (config.auth?.type === 'bearer') this.#credentials = { token: config.auth.token };
    else if (user && url.password) this.#credentials = { user, pass };
    else if (user) this.#credentials = { token: user };
    else this.#credentials = {};
    this.#hidden = [user, pass].filter((v) => v.length > 0);
  }

  /**
   * Connects and sets every consumer up. When the server cannot be reached, or a stream or
   * consumer cannot be set up, the hub still starts: the connector shows unhealthy with the
   * reason and keeps trying with backoff.
   */
  override async start(): Promise<void> {
    let first!: () => void;
    const firstAttempt = new Promise<void>((resolve) => (first = resolve));
    this.#setup = this.#run(first);
    await firstAttempt;
  }

  async #run(firstAttemptDone: () => void): Promise<void> {
    for (let failures = 0; !this.stopping.aborted; failures++) {
      try {
        if (!this.#nc || this.#nc.isClosed()) await this.#connect();
        await this.#consumeAll();
        this.#startLag();
        firstAttemptDone();
        return;
      } catch (error) {
        if (this.stopping.aborted) break;
        const reason = this.#clean(error instanceof Error ? error.message : String(error));
        if (this.#connected) this.reportHealth(false, reason);
        else this.connectionLost(new Error(reason));
        if (failures === 0) this.deps.logger.error({ err: { message: reason } }, 'nats connector not ready; retrying with backoff');
        firstAttemptDone();
        await this.backoff(failures, 500, MAX_SETUP_BACKOFF_MS);
      }
    }
    firstAttemptDone();
  }

  async #connect(): Promise<void> {
    const { transport, jetstream } = nats();
    const nc = await transport
      .connect({
      servers: [this.#server],
      ...this.#credentials,
      name: `junction:${this.name}`,
      timeout: this.config.timeoutMs,
      // Once connected, the client reconnects by itself, forever, with this backoff.
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => Math.min(5_000, 250 * 2 ** Math.min(this.#reconnects, 5)) + Math.random() * 250,
      // A connection that stopped answering (no RST) is found within about a minute.
      pingInterval: 20_000,
      maxPingOut: 3,
    })
      .catch((error: unknown) => {
        throw new Error(`cannot connect to the NATS server ${this.#server}: ${errorText(error)}`);
      });
    if (this.stopping.aborted) {
      await nc.close().catch(() => undefined);
      return;
    }
    this.#nc = nc;
    this.#jsm = await jetstream.jetstreamManager(nc, { timeout: this.config.timeoutMs });
    this.#js = jetstream.jetstream(nc, { timeout: this.config.timeoutMs });
    this.#connected = true;
    this.connectionUp();
    this.deps.logger.info({ server: this.#server, version: nc.info?.version }, 'connected to NATS');
    void this.#watch(nc);
  }

  /** Maps the client's connection events to the connector's health. */
  async #watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.#connected = false;
          if (!this.stopping.aborted) {
            this.connectionLost(new Error(`disconnected from the NATS server ${this.#server}; reconnecting`));
            this.deps.logger.warn({ server: this.#server }, 'NATS connection lost; reconnecting');
          }
          break;
        case 'reconnecting':
          this.#reconnects++;
          break;
        case 'reconnect':
          this.#reconnects = 0;
          this.#connected = true;
          this.#reportConsumers();
          this.deps.logger.info({ server: this.#server }, 'NATS connection back');
          break;
        case 'error':
          this.deps.logger.warn({ err: { message: this.#clean(s.error.message) } }, 'NATS server error');
          break;
        case 'ldm':
          this.deps.logger.warn({ server: this.#server }, 'NATS server entering lame duck mode');
          break;
        default:
          break;
      }
    }
    // Closed: by `disconnect()`, or for good by the client (credentials refused twice).
    if (this.stopping.aborted) return;
    const error = await nc.closed();
    this.#connected = false;
    this.connectionLost(new Error(`the NATS connection closed${error ? `: ${this.#clean(error.message)}` : ''}`));
    await this.#stopLoops();
    this.#setup = this.#run(() => undefined);
  }

  /** Healthy when connected and every consumer is served; else the first consumer problem. */
  #reportConsumers(): void {
    if (!this.#connected) return;
    const problem = this.#running.find((r) => r.problem !== null)?.problem;
    if (problem) this.reportHealth(false, problem);
    else this.connectionUp();
  }

  async #consumeAll(): Promise<void> {
    const js = this.#js;
    const jsm = this.#jsm;
    if (!js || !jsm) return;
    for (const entry of this.config.consume) {
      const durable = entry.durable ?? this.name;
      if (this.#running.some((r) => r.entry === entry)) continue;
      await this.#ensure(jsm, entry, durable);
      const running: Running = { entry, durable, messages: await this.#pull(js, entry, durable), loop: Promise.resolve(), problem: null };
      running.loop = this.#loop(running);
      void this.#notifications(running, running.messages);
      this.#running.push(running);
    }
    await this.#refreshLag();
  }

  #pull(js: JetStreamClient, entry: Entry, durable: string): Promise<ConsumerMessages> {
    return js.consumers.get(entry.stream, durable).then((consumer) => consumer.consume({ max_messages: this.config.prefetch }));
  }

  /** Creates the stream when missing; creates the durable pull consumer, or updates it to these settings. */
  async #ensure(jsm: JetStreamManager, entry: Entry, durable: string): Promise<void> {
    let stream: StreamInfo;
    try {
      stream = await jsm.streams.info(entry.stream);
    } catch (error) {
      if (apiCode(error) !== 10059) throw new Error(`cannot read stream ${entry.stream}: ${errorText(error)}`);
      try {
        stream = await jsm.streams.add({ name: entry.stream, subjects: entry.subjects });
      } catch (e) {
        throw new Error(`cannot create stream ${entry.stream} for subjects ${entry.subjects.join(', ')}: ${errorText(e)}`);
      }
      this.deps.logger.info({ stream: entry.stream, subjects: entry.subjects }, 'created JetStream stream');
    }
    const filter = this.#filter(entry, stream);
    const { AckPolicy } = nats().jetstream;
    const settings: Partial<ConsumerConfig> = {
      ack_wait: this.config.ackWaitMs * 1_000_000,
      // The hub dead-letters (and terminates) a message itself after maxDeliveries; a message it
      // could not store yet (the event log down) must never be dropped by the server.
      max_deliver: -1,
      ...filter,
    };
    let existing: ConsumerInfo | undefined;
    try {
      existing = await jsm.consumers.info(entry.stream, durable);
    } catch (error) {
      if (apiCode(error) !== 10014) throw new Error(`cannot read consumer ${durable} of stream ${entry.stream}: ${errorText(error)}`);
    }
    const where = `consumer ${durable} of stream ${entry.stream}`;
    if (!existing) {
      try {
        await jsm.consumers.add(entry.stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, ...settings });
      } catch (error) {
        throw new Error(`cannot create ${where}: ${errorText(error)}`);
      }
      this.deps.logger.info({ stream: entry.stream, durable }, 'created JetStream durable consumer');
      return;
    }
    if (existing.config.deliver_subject) throw new Error(`${where} is a push consumer; the hub needs a pull consumer (delete it, or name another durable)`);
    if (existing.config.ack_policy !== AckPolicy.Explicit) throw new Error(`${where} has ack_policy ${existing.config.ack_policy}; the hub needs explicit`);
    const current = existing.config;
    const same =
      current.ack_wait === settings.ack_wait &&
      current.max_deliver === settings.max_deliver &&
      (current.filter_subject ?? '') === (settings.filter_subject ?? '') &&
      sameSet(current.filter_subjects ?? [], settings.filter_subjects ?? []);
    if (same) return;
    try {
      await jsm.consumers.update(entry.stream, durable, settings);
    } catch (error) {
      throw new Error(`cannot update ${where} to the configured settings: ${errorText(error)}`);
    }
    this.deps.logger.info({ stream: entry.stream, durable }, 'updated JetStream durable consumer');
  }

  /**
   * The consumer's filter: one subject, several (NATS 2.10+), or none when the subjects are the
   * stream's own (how a 2.9 server takes several).
   */
  #filter(entry: Entry, stream: StreamInfo): Pick<ConsumerConfig, 'filter_subject' | 'filter_subjects'> {
    const own = stream.config.subjects ?? [];
    if (entry.subjects.length === 1) return { filter_subject: entry.subjects[0]! };
    if (atLeast(this.#nc?.info?.version, [2, 10])) return { filter_subject: '', filter_subjects: entry.subjects };
    if (sameSet(own, entry.subjects)) return { filter_subject: '' };
    throw new Error(
      `stream ${entry.stream}: this NATS server (${this.#nc?.info?.version ?? 'unknown version'}) filters a consumer on one subject only; ` +
        `list one subject, or exactly the stream's subjects (${own.join(', ')}), or use NATS 2.10+`,
    );
  }

  /** Hands each message to the event log, one at a time per consumer, and settles it by the outcome. */
  async #loop(running: Running): Promise<void> {
    try {
      for await (const m of running.messages) {
        if (running.problem !== null) {
          running.problem = null;
          this.#reportConsumers();
        }
        await this.#handle(m);
      }
    } catch (error) {
      if (!this.stopping.aborted) this.deps.logger.error({ err: { message: errorText(error) }, stream: running.entry.stream }, 'NATS consumer stopped');
    }
  }

  async #handle(m: JsMsg): Promise<void> {
    const info = m.info;
    const msgId = m.headers?.get('Nats-Msg-Id');
    const message: InboundMessage = {
      type: m.subject,
      deliveryId: msgId || `${info.stream}:${info.streamSequence}`,
      body: m.data,
      deliveries: info.deliveryCount,
      redelivered: info.redelivered,
      origin: `stream ${info.stream}`,
    };
    // Storing may take longer than ack_wait (the event log retrying): tell the server it is in hand.
    const progress = setInterval(() => m.working(), Math.max(250, Math.floor(this.config.ackWaitMs / 2)));
    progress.unref();
    let outcome: IntakeOutcome;
    try {
      outcome = await this.intake(message);
    } catch (error) {
      // Closing: not stored, left unacknowledged, delivered again to the next run after ack_wait.
      if (!(error instanceof IntakeAbortedError)) this.deps.logger.error({ err: error, deliveryId: message.deliveryId }, 'message not handled; left for redelivery');
      return;
    } finally {
      clearInterval(progress);
    }
    if (outcome === 'stored' || outcome === 'duplicate') m.ack();
    else if (outcome === 'dead') m.term();
    else m.nak(Math.min(MAX_REDELIVERY_DELAY_MS, this.config.redeliveryDelayMs * 2 ** Math.max(0, info.deliveryCount - 1)));
  }

  /** The consumer's notifications: a consumer or stream gone shows as unhealthy, and is set up again. */
  async #notifications(running: Running, messages: ConsumerMessages): Promise<void> {
    for await (const n of messages.status()) {
      if (running.messages !== messages) return;
      let problem: string | undefined;
      if (n.type === 'consumer_not_found' || n.type === 'consumer_deleted') problem = `consumer ${running.durable} of stream ${running.entry.stream} not found on the server`;
      else if (n.type === 'stream_not_found') problem = `stream ${running.entry.stream} not found on the server`;
      else if (n.type === 'heartbeat' && running.problem !== null) {
        running.problem = null;
        this.#reportConsumers();
      }
      if (problem === undefined || this.stopping.aborted) continue;
      if (running.problem === null) this.deps.logger.warn({ stream: running.entry.stream, durable: running.durable }, `${problem}; setting it up again`);
      running.problem = problem;
      this.#reportConsumers();
      void this.#reensure(running);
    }
  }

  /** Creates a deleted stream or consumer again (once at a time per consumer), then pulls from it anew. */
  async #reensure(running: Running): Promise<void> {
    const jsm = this.#jsm;
    const js = this.#js;
    if (this.#reensuring.has(running) || !jsm || !js) return;
    this.#reensuring.add(running);
    try {
      await this.#ensure(jsm, running.entry, running.durable);
      // The old pull waits on a consumer that is gone: close it (its message in hand settles first).
      await raceAbort(running.messages.close(), AbortSignal.timeout(this.config.timeoutMs)).catch(() => undefined);
      await running.loop;
      if (this.stopping.aborted || !this.#running.includes(running)) return;
      running.messages = await this.#pull(js, running.entry, running.durable);
      running.loop = this.#loop(running);
      void this.#notifications(running, running.messages);
      running.problem = null;
      this.#reportConsumers();
      this.deps.logger.info({ stream: running.entry.stream, durable: running.durable }, 'JetStream consumer set up again');
    } catch (error) {
      running.problem = this.#clean(errorText(error));
      this.#reportConsumers();
    } finally {
      await this.pause(1_000);
      this.#reensuring.delete(running);
    }
  }

  #startLag(): void {
    if (this.#lagTimer || this.config.consume.length === 0) return;
    this.#lagTimer = setInterval(() => void this.#refreshLag(), LAG_INTERVAL_MS);
    this.#lagTimer.unref();
  }

  /** Lag: messages of the hub's consumers not yet acknowledged (pending delivery, or delivered and in hand). */
  async #refreshLag(): Promise<void> {
    const jsm = this.#jsm;
    if (!jsm || !this.#connected || this.#running.length === 0) return;
    try {
      let lag = 0;
      for (const r of this.#running) {
        const info = await jsm.consumers.info(r.entry.stream, r.durable);
        lag += info.num_pending + info.num_ack_pending;
      }
      this.setLag(lag);
    } catch {
      // Kept as it was: the connection or the consumer's problem shows in the health already.
    }
  }

  /** Why `to` is not a subject to publish to (SPEC §4 `to`), or undefined when it is. */
  protected override destinationProblem(to: string): string | undefined {
    if (to.length === 0) return 'a subject cannot be empty';
    if (to.length > MAX_ID_LENGTH) return `a subject is at most ${MAX_ID_LENGTH} characters (it becomes the event type)`;
    if (/[\s\0]/.test(to)) return 'a subject has no whitespace';
    if (/[*>]/.test(to)) return 'a subject to publish to has no wildcard ("*" or ">")';
    if (to.split('.').some((t) => t === '')) return 'a subject has no empty token (no leading, trailing or double ".")';
    if (to.startsWith('$') || to.startsWith('_INBOX.')) return 'subjects starting with "$" or "_INBOX." belong to the server and its clients';
    return undefined;
  }

  /** `js.publish`, resolved with JetStream's PubAck; the idempotency key is also JetStream's `Nats-Msg-Id`. */
  protected async send(message: OutboundMessage, signal: AbortSignal): Promise<PublishConfirm> {
    const js = this.#js;
    if (!js || !this.#connected) {
      throw new UpstreamError(this.name, `${this.name}: not connected to the NATS server ${this.#server}; nothing was published`, { transient: true, countsAsFailure: true });
    }
    try {
      const ack = await raceAbort(
        js.publish(message.to, message.body, {
          timeout: this.config.timeoutMs,
          ...(message.idempotencyKey !== undefined && { msgID: message.idempotencyKey }),
        }),
        signal,
      );
      return { messageId: `${ack.stream}:${ack.seq}` };
    } catch (error) {
      if (signal.aborted) throw error; // the pipeline makes it UPSTREAM_TIMEOUT
      throw this.#publishError(error, message.to);
    }
  }

  #publishError(error: unknown, to: string): Error {
    const name = (error as Error)?.name;
    const text = this.#clean(errorText(error));
    if (name === 'TimeoutError') return new UpstreamTimeoutError(this.name, this.config.timeoutMs);
    if (name === 'JetStreamNotEnabled' || name === 'NoRespondersError') {
      // 503 no responders: nothing answers on the subject.
      const detail = this.#nc?.info?.jetstream === false ? 'JetStream is not enabled on the NATS server' : `no JetStream stream captures subject ${JSON.stringify(to)}`;
      return new UpstreamError(this.name, `${this.name}: ${detail}; nothing was published`, { status: 503, transient: false, countsAsFailure: false });
    }
    if (name === 'JetStreamApiError' || name === 'JetStreamError') {
      // The stream refused the message (sealed, full with discard new, too large, …).
      return new UpstreamError(this.name, `${this.name}: JetStream refused the message: ${text}`, {
        transient: false,
        countsAsFailure: false,
        details: apiCode(error) !== undefined ? { natsErrorCode: apiCode(error) } : {},
      });
    }
    return new UpstreamError(this.name, `${this.name}: publishing to the NATS server ${this.#server} failed: ${text}`, { transient: true, countsAsFailure: true });
  }

  /** A round trip to the server and JetStream's account info: the server is up and JetStream answers. */
  protected async ping(signal: AbortSignal): Promise<void> {
    const nc = this.#nc;
    const jsm = this.#jsm;
    if (!nc || !jsm || !this.#connected) throw new Error(`not connected to the NATS server ${this.#server}`);
    try {
      await raceAbort(nc.flush(), signal);
      await raceAbort(jsm.getAccountInfo(), signal);
    } catch (error) {
      if (signal.aborted) throw error;
      throw new Error(`the NATS server ${this.#server} did not answer: ${this.#clean(errorText(error))}`);
    }
  }

  /** Stops pulling: every consumer's pull is closed, and each message in hand settles before this resolves. */
  protected async stopConsuming(): Promise<void> {
    if (this.#lagTimer) clearInterval(this.#lagTimer);
    this.#lagTimer = undefined;
    await this.#setup?.catch(() => undefined);
    await this.#stopLoops();
  }

  async #stopLoops(): Promise<void> {
    const running = this.#running.splice(0);
    await Promise.all(
      running.map(async (r) => {
        // Messages pulled but not handed over stay unacknowledged: the server redelivers them after ack_wait.
        await raceAbort(r.messages.close(), AbortSignal.timeout(this.config.timeoutMs)).catch(() => undefined);
        await r.loop;
      }),
    );
  }

  /** Flushes the acknowledgements written so far, then closes the connection. */
  protected async disconnect(): Promise<void> {
    const nc = this.#nc;
    this.#nc = undefined;
    this.#js = undefined;
    this.#jsm = undefined;
    this.#connected = false;
    if (!nc || nc.isClosed()) return;
    try {
      if (!nc.isDraining()) await raceAbort(nc.drain(), AbortSignal.timeout(this.config.timeoutMs));
    } catch {
      // A server out of reach: what was not acknowledged is delivered again.
    } finally {
      if (!nc.isClosed()) await nc.close().catch(() => undefined);
    }
  }

  /** One line of server text, shortened, with no credential. */
  #clean(text: string): string {
    let out = this.deps.scrub(text.replace(/\s+/g, ' ').trim().slice(0, 300));
    for (const secret of this.#hidden) out = out.split(secret).join('[REDACTED]');
    return out;
  }
}

/** The JetStream API error code (10059 stream not found, 10014 consumer not found), if any. */
function apiCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** Whether a server version ("2.10.4") is at least `[major, minor]`. */
function atLeast(version: string | undefined, [major, minor]: [number, number]): boolean {
  const [a = 0, b = 0] = (version ?? '').split('.').map((p) => Number.parseInt(p, 10) || 0);
  return a > major || (a === major && b >= minor);
}

/** `promise`, or a rejection with the signal's reason once it aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
