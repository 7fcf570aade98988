import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Amqp from 'amqplib';
import {
  BrokerConnector,
  brokerOptions,
  connectorConfig,
  type ConnectorDeps,
  type InboundMessage,
  IntakeAbortedError,
  type IntakeOutcome,
  type OutboundMessage,
  positiveInt,
  type PublishConfirm,
  str,
  UpstreamError,
  urlParts,
  z,
} from '../../src/index.ts';

// amqplib loads with the first amqp connector: `junction check` and hubs without one do not pay for it.
const require = createRequire(import.meta.url);
let client: typeof Amqp | undefined;
const amqplib = () => (client ??= require('amqplib') as typeof Amqp);

const URL_EXPECTED = 'expected an amqp:// or amqps:// URL';
/** AMQP 0-9-1 short strings (queue, exchange, routing key, message-id) hold at most 255 bytes. */
const SHORTSTR_BYTES = 255;
/** The AMQP 0-9-1 grammar for exchange names (RabbitMQ takes more; the hub keeps to this). */
const EXCHANGE_NAME = /^[A-Za-z0-9_.:-]+$/;
/** Control characters: never part of a name the hub sends. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** First and longest pause between two connection attempts (with full jitter). */
const FIRST_RECONNECT_MS = 100;
const MAX_RECONNECT_MS = 5_000;
/** How often the consumed queues' ready messages (`consumer.lag`) are read. */
const LAG_EVERY_MS = 5_000;
/** Redelivery counts kept in memory (classic queues: the broker does not count). */
const MAX_COUNTED = 10_000;

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

const name = (what: string) =>
  str(what)
    .refine((v) => bytes(v) <= SHORTSTR_BYTES, { error: `expected ${what} of at most ${SHORTSTR_BYTES} bytes` })
    .refine((v) => !CONTROL.test(v), { error: `expected ${what} without control characters` });
const exchangeName = () =>
  name('an exchange name').refine((v) => EXCHANGE_NAME.test(v), { error: 'expected an exchange name (letters, digits, -, _, . and :)' });

const bindingSchema = z.strictObject({
  /**
   * The exchange the queue is bound to. The hub uses it as it is when it exists (any type);
   * otherwise it declares it: a durable `topic` exchange.
   */
  exchange: exchangeName(),
  /** The binding key: for a topic exchange, words separated by dots, `*` one word, `#` any number of words. */
  routingKey: z
    .string({ error: 'expected a routing key (a string)' })
    .refine((v) => bytes(v) <= SHORTSTR_BYTES, { error: `expected a routing key of at most ${SHORTSTR_BYTES} bytes` })
    .refine((v) => !CONTROL.test(v), { error: 'expected a routing key without control characters' }),
});

const consumeSchema = z.strictObject({
  /** The queue consumed. The hub declares it durable (and binds it) at every connection. */
  queue: name('a queue name').refine((v) => !v.startsWith('amq.'), { error: 'expected a queue name not starting with "amq." (reserved by the broker)' }),
  /** Default []. Bindings declared at every connection: `{ exchange, routingKey }`. */
  bindings: z.array(bindingSchema, { error: 'expected a list of { exchange, routingKey }' }).default([]),
  /**
   * Default none. RabbitMQ's dead-letter exchange for this queue (`x-dead-letter-exchange`, declared
   * like a binding's exchange when missing): a message dead-lettered by the hub is also rejected
   * without requeue, so RabbitMQ routes it there, with its routing key and an `x-death` header.
   */
  deadLetterExchange: exchangeName().optional(),
  /**
   * Default classic. `quorum` declares a quorum queue (`x-queue-type: quorum`): replicated, and
   * RabbitMQ counts deliveries itself (`x-delivery-count`), across hub restarts.
   */
  queueType: z.enum(['classic', 'quorum'], { error: 'expected classic or quorum' }).default('classic'),
});

export const amqpConfigSchema = connectorConfig({
  /**
   * `amqp://user:password@host:5672/vhost` or `amqps://…` (TLS). The password is a secret. Query
   * parameters are amqplib's (`heartbeat`, `frameMax`, `channelMax`).
   */
  url: z.string({ error: URL_EXPECTED }).superRefine((value, ctx) => {
    // Names the scheme at most, never the URL: it may hold a password.
    const { scheme, url } = urlParts(value);
    if ((scheme === 'amqp' || scheme === 'amqps') && url?.hostname) return;
    const got = scheme ? `a ${scheme === 'amqp' || scheme === 'amqps' ? 'malformed ' : ''}"${scheme}:" URL` : 'no URL scheme';
    ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED}, got ${got}`, params: { complete: true } });
  }),
  /** Default []. The queues consumed into the event log (none: a connector that only publishes). */
  consume: z.array(consumeSchema, { error: 'expected a list of { queue, bindings }' }).default([]),
  /** Default 10. Unacknowledged messages the broker hands the hub at a time (per connector). */
  prefetch: positiveInt().max(65_535, { error: 'expected a positive integer of at most 65535' }).default(10),
  ...brokerOptions,
}).superRefine((c, ctx) => {
  // Key names only in these messages, never a value: `params.complete` stops the loader adding one.
  if (c.auth) {
    ctx.addIssue({ code: 'custom', path: ['auth'], message: 'does not apply to an amqp connector: give the credentials in the url (amqp://user:password@host)', params: { complete: true } });
  }
  if (c.cache) {
    ctx.addIssue({ code: 'custom', path: ['cache'], message: 'does not apply to an amqp connector: publishing is never cached', params: { complete: true } });
  }
  const seen = new Set<string>();
  c.consume.forEach((entry, i) => {
    if (seen.has(entry.queue)) ctx.addIssue({ code: 'custom', path: ['consume', i, 'queue'], message: 'expected each queue once', params: { complete: true } });
    seen.add(entry.queue);
  });
});
export type AmqpConfig = z.output<typeof amqpConfigSchema>;
type ConsumeConfig = AmqpConfig['consume'][number];

/** One connection and its channels; replaced as a whole when the connection is lost. */
interface Session {
  model: Amqp.ChannelModel;
  /** The channel the consumers run on: a delivery is acknowledged on it or not at all. */
  consume: Amqp.Channel | undefined;
  consumerTags: string[];
  /** Publisher confirms, made on the first publish. */
  publish: Promise<Amqp.ConfirmChannel> | undefined;
  /** checkQueue (lag, health probe): a failing check closes its channel, not the consumers'. */
  aux: Promise<Amqp.Channel> | undefined;
  open: boolean;
}

/** Where a `to` goes: `queue` (the default exchange) or `exchange/routingKey`. */
function destination(to: string): { exchange: string; routingKey: string } {
  const slash = to.indexOf('/');
  return slash === -1 ? { exchange: '', routingKey: to } : { exchange: to.slice(0, slash), routingKey: to.slice(slash + 1) };
}

/**
 * RabbitMQ (AMQP 0-9-1, amqplib) behind the hub: consumes the configured queues (declared durable,
 * bound, `prefetch` at a time) into the event log, acknowledging each message once it is stored;
 * publishes `@publish` messages persistent and mandatory on a confirm channel. Reconnects with
 * backoff and jitter, re-declaring everything, until the hub stops.
 */
export class AmqpConnector extends BrokerConnector<AmqpConfig> {
  #session: Session | undefined;
  #reconnecting: Promise<void> | undefined;
  #lastError: string | null = null;
  #lagTimer: NodeJS.Timeout | undefined;
  /** The intake of the last message delivered: the next one starts once it settled. */
  #previous: Promise<unknown> = Promise.resolve();
  /** Deliveries seen per message (queue + delivery id), for queues where the broker does not count. */
  readonly #counts = new Map<string, number>();
  /** Publishes returned unroutable (`mandatory`), until their confirm arrives: key → reply text. */
  readonly #returned = new Map<string, string>();
  /** Why the broker closed a publish channel, for the publishes it failed. */
  readonly #closedBecause = new WeakMap<Amqp.Channel, string>();
  /** The URL's password decoded: the configured (encoded) one is scrubbed by the hub already. */
  readonly #password: string | undefined;
  readonly #server: string;

  constructor(name: string, config: AmqpConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    const url = new URL(config.url);
    this.#password = url.password ? decodeURIComponent(url.password) : undefined;
    this.#server = `${url.hostname}:${url.port || (url.protocol === 'amqps:' ? 5671 : 5672)}`;
  }

  /** Connects (declares, consumes); when the broker cannot be reached, keeps trying in the background and shows unhealthy meanwhile. */
  override async start(): Promise<void> {
    try {
      await this.#connect();
    } catch (error) {
      this.#lost(error);
      this.deps.logger.error({ err: this.#clean(error) }, `cannot connect to RabbitMQ ${this.#server}; retrying in the background`);
      this.#reconnect();
    }
    this.#lagTimer = setInterval(() => void this.#refreshLag(), LAG_EVERY_MS);
    this.#lagTimer.unref();
  }

  async #connect(): Promise<void> {
    const model = await amqplib().connect(this.config.url, {
      timeout: this.config.timeoutMs,
      // A publish waits for its confirm: without TCP_NODELAY, Nagle and the peer's delayed ACK
      // added about 40 ms to each (measured: @publish p50 45 ms → see README).
      noDelay: true,
      clientProperties: { connection_name: `junction ${this.name}` },
    });
    const session: Session = { model, consume: undefined, consumerTags: [], publish: undefined, aux: undefined, open: true };
    model.on('error', (error: Error) => this.deps.logger.warn({ err: this.#clean(error) }, 'RabbitMQ connection error'));
    model.on('close', (error?: Error) => this.#dropped(session, error ?? new Error('the connection was closed')));
    model.on('blocked', (reason: string) => this.deps.logger.warn({ reason }, 'RabbitMQ blocked publishing (resource alarm)'));
    model.on('unblocked', () => this.deps.logger.info('RabbitMQ unblocked publishing'));
    try {
      if (this.stopping.aborted) throw new IntakeAbortedError(this.name);
      await this.#declare(model);
      if (this.config.consume.length > 0) {
        const channel = await model.createChannel();
        session.consume = channel;
        channel.on('error', (error: Error) => this.deps.logger.warn({ err: this.#clean(error) }, 'RabbitMQ consumer channel error'));
        // A consumer channel closed alone (an ack the broker refused): the session is unusable.
        channel.on('close', () => this.#dropped(session, new Error('the consumer channel was closed')));
        await channel.prefetch(this.config.prefetch);
        for (const entry of this.config.consume) {
          const { consumerTag } = await channel.consume(entry.queue, (msg) => this.#onMessage(session, channel, entry, msg), { noAck: false });
          session.consumerTags.push(consumerTag);
        }
      }
      if (this.stopping.aborted) throw new IntakeAbortedError(this.name);
      if (!session.open) throw new Error('the connection was lost while connecting');
    } catch (error) {
      session.open = false;
      await model.close().catch(() => undefined);
      throw error;
    }
    this.#session = session;
    this.#lastError = null;
    this.connectionUp();
    this.deps.logger.info({ server: this.#server, queues: this.config.consume.map((c) => c.queue) }, 'connected to RabbitMQ');
    void this.#refreshLag();
  }

  /** Exchanges (used as they are, declared durable topic when missing), queues (durable), bindings. */
  async #declare(model: Amqp.ChannelModel): Promise<void> {
    const exchanges = new Set<string>();
    for (const entry of this.config.consume) {
      for (const b of entry.bindings) exchanges.add(b.exchange);
      if (entry.deadLetterExchange) exchanges.add(entry.deadLetterExchange);
    }
    const channel = await model.createChannel();
    channel.on('error', () => undefined); // the failing call rejects with it
    try {
      for (const exchange of exchanges) {
        if (!(await exists(model, exchange))) await channel.assertExchange(exchange, 'topic', { durable: true });
      }
      for (const entry of this.config.consume) {
        await channel.assertQueue(entry.queue, {
          durable: true,
          arguments: {
            ...(entry.queueType === 'quorum' && { 'x-queue-type': 'quorum' }),
            ...(entry.deadLetterExchange && { 'x-dead-letter-exchange': entry.deadLetterExchange }),
          },
        });
        for (const b of entry.bindings) await channel.bindQueue(entry.queue, b.exchange, b.routingKey);
      }
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  #onMessage(session: Session, channel: Amqp.Channel, entry: ConsumeConfig, msg: Amqp.ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (the queue was deleted): reconnect, which declares it again.
      this.#dropped(session, new Error(`RabbitMQ cancelled the consumer of queue ${entry.queue} (deleted?)`));
      return;
    }
    // Closing: leave it unacknowledged; the broker takes it back when the channel closes.
    if (this.stopping.aborted) return;
    const message = this.#inbound(entry, msg);
    const counted = `${entry.queue}\0${message.deliveryId}`;
    // One at a time, in the order RabbitMQ delivered them: the log keeps the queue's order. The
    // ack is part of the intake (`settle`), so close() waits for it before disconnecting.
    const outcome = this.#previous.then(() =>
      this.intake(message, (settled) => {
        if (settled !== 'retry') this.#counts.delete(counted);
        this.#settle(session, channel, entry, msg, settled);
      }),
    );
    this.#previous = outcome.catch(() => undefined);
    outcome.catch((error: unknown) => {
      if (error instanceof IntakeAbortedError) return; // left for redelivery
      this.deps.logger.error({ err: error, deliveryId: message.deliveryId }, 'message not stored; handed back to RabbitMQ');
      this.#settle(session, channel, entry, msg, 'retry');
    });
  }

  /** Acknowledges (or rejects) on the channel the message came on, if it is still open: otherwise the broker redelivers it. */
  #settle(session: Session, channel: Amqp.Channel, entry: ConsumeConfig, msg: Amqp.ConsumeMessage, outcome: IntakeOutcome): void {
    if (!session.open || session.consume !== channel) return;
    try {
      if (outcome === 'retry') channel.nack(msg, false, true);
      else if (outcome === 'dead' && entry.deadLetterExchange) channel.nack(msg, false, false);
      else channel.ack(msg);
    } catch (error) {
      // The channel closed in between: its delivery tags are dead, the broker redelivers.
      this.deps.logger.debug({ err: error }, 'message not settled: the channel is closed; RabbitMQ redelivers it');
    }
  }

  #inbound(entry: ConsumeConfig, msg: Amqp.ConsumeMessage): InboundMessage {
    const { properties, fields, content } = msg;
    const messageId = typeof properties.messageId === 'string' && properties.messageId !== '' ? properties.messageId : undefined;
    // No message-id: the SHA-256 of where it was published and its body, stable across redeliveries.
    const deliveryId =
      messageId ?? `sha256:${createHash('sha256').update(fields.exchange).update('\0').update(fields.routingKey).update('\0').update(content).digest('hex')}`;
    const type = typeof properties.type === 'string' && properties.type !== '' ? properties.type : fields.routingKey || entry.queue;
    return {
      type,
      deliveryId,
      body: content,
      deliveries: this.#deliveries(`${entry.queue}\0${deliveryId}`, msg),
      redelivered: fields.redelivered,
      origin: `queue ${entry.queue}`,
    };
  }

  /**
   * Deliveries of a message, this one included: RabbitMQ's `x-delivery-count` + 1 where it counts
   * (quorum queues), and the hub's own count otherwise (in memory: it starts again at a restart;
   * a delivery marked redelivered counts at least 2).
   */
  #deliveries(key: string, msg: Amqp.ConsumeMessage): number {
    const header: unknown = msg.properties.headers?.['x-delivery-count'];
    const byBroker = typeof header === 'number' || typeof header === 'bigint' ? Number(header) + 1 : 0;
    const seen = (this.#counts.get(key) ?? (msg.fields.redelivered ? 1 : 0)) + 1;
    this.#counts.delete(key);
    this.#counts.set(key, seen);
    if (this.#counts.size > MAX_COUNTED) this.#counts.delete(this.#counts.keys().next().value!);
    return Math.max(byBroker, seen);
  }

  /** A session ended (connection closed or its consumer channel lost): unhealthy, and reconnect. */
  #dropped(session: Session, error: unknown): void {
    if (!session.open) return;
    session.open = false;
    if (this.#session === session) this.#session = undefined;
    session.model.close().catch(() => undefined);
    if (this.stopping.aborted) return;
    this.#lost(error);
    this.deps.logger.warn({ err: this.#clean(error) }, 'RabbitMQ connection lost; reconnecting');
    this.#reconnect();
  }

  #lost(error: unknown): void {
    this.#lastError = this.#clean(error);
    this.connectionLost(new Error(this.#lastError));
  }

  /** One reconnection loop at a time: exponential backoff with full jitter, capped, until connected or closing. */
  #reconnect(): void {
    this.#reconnecting ??= (async () => {
      for (let failures = 0; !this.stopping.aborted; failures++) {
        await this.backoff(failures, FIRST_RECONNECT_MS, MAX_RECONNECT_MS);
        if (this.stopping.aborted) return;
        try {
          await this.#connect();
          return;
        } catch (error) {
          if (this.stopping.aborted) return;
          this.#lost(error);
          if (failures === 0) this.deps.logger.warn({ err: this.#clean(error) }, 'reconnecting to RabbitMQ failed; trying again');
        }
      }
    })().finally(() => (this.#reconnecting = undefined));
  }

  async #refreshLag(): Promise<void> {
    const session = this.#session;
    if (!session?.open || this.config.consume.length === 0) return;
    try {
      const channel = await this.#aux(session);
      let lag = 0;
      for (const entry of this.config.consume) lag += (await channel.checkQueue(entry.queue)).messageCount;
      if (session.open) this.setLag(lag);
    } catch (error) {
      this.deps.logger.debug({ err: this.#clean(error) }, 'queue depth not read');
    }
  }

  #aux(session: Session): Promise<Amqp.Channel> {
    return (session.aux ??= session.model.createChannel().then(
      (channel) => {
        channel.on('error', () => undefined); // the failing check rejects with it
        channel.on('close', () => (session.aux = undefined));
        return channel;
      },
      (error: unknown) => {
        session.aux = undefined;
        throw error;
      },
    ));
  }

  #confirmChannel(session: Session): Promise<Amqp.ConfirmChannel> {
    return (session.publish ??= session.model.createConfirmChannel().then(
      (channel) => {
        channel.on('error', (error: Error) => {
          this.#closedBecause.set(channel, this.#clean(error));
          this.deps.logger.warn({ err: this.#clean(error) }, 'RabbitMQ publish channel closed by the broker');
        });
        channel.on('close', () => (session.publish = undefined));
        channel.on('return', (msg: Amqp.Message) => {
          const key = returnKey(msg.fields.exchange, msg.fields.routingKey, String(msg.properties.messageId));
          if (this.#returned.has(key)) this.#returned.set(key, String((msg.fields as { replyText?: unknown }).replyText ?? 'NO_ROUTE'));
        });
        return channel;
      },
      (error: unknown) => {
        session.publish = undefined;
        throw error;
      },
    ));
  }

  /** `queue` or `exchange/routingKey`, each part within AMQP's limits; no wildcard, no control character. */
  protected override destinationProblem(to: string): string | undefined {
    if (to === '') return 'the destination is empty: give a queue name or exchange/routingKey';
    const { exchange, routingKey } = destination(to);
    if (CONTROL.test(to)) return 'a destination cannot contain control characters';
    if (exchange !== '' && !EXCHANGE_NAME.test(exchange)) return `the exchange name ${JSON.stringify(exchange)} may only hold letters, digits, -, _, . and :`;
    if (bytes(exchange) > SHORTSTR_BYTES) return `the exchange name is longer than ${SHORTSTR_BYTES} bytes`;
    if (bytes(routingKey) > SHORTSTR_BYTES) return `the ${exchange === '' ? 'queue name' : 'routing key'} is longer than ${SHORTSTR_BYTES} bytes`;
    if (/[*#]/.test(routingKey)) return 'wildcards (* and #) are for bindings: a message is published with a plain routing key';
    if (exchange === '' && routingKey === '') return 'the default exchange needs a queue name';
    return undefined;
  }

  /**
   * One message on a confirm channel: persistent, `application/json`, `mandatory`, its
   * `message-id` the idempotency key (else a new UUID), which is the receipt's messageId.
   * Resolves on the broker's ack; a nack, a return (no queue bound) or a closed channel rejects.
   */
  protected async send(message: OutboundMessage, signal: AbortSignal): Promise<PublishConfirm> {
    const session = this.#session;
    if (!session?.open) {
      throw new UpstreamError(this.name, `${this.name}: not connected to RabbitMQ ${this.#server} (reconnecting${this.#lastError ? `: ${this.#lastError}` : ''}); nothing was published`, {
        transient: true,
        countsAsFailure: true,
      });
    }
    const channel = await this.#confirmChannel(session).catch((error: unknown) => {
      throw new UpstreamError(this.name, `${this.name}: cannot open a channel to RabbitMQ: ${this.#clean(error)}`, { transient: true, countsAsFailure: true });
    });
    const { exchange, routingKey } = destination(message.to);
    const key = message.idempotencyKey;
    const messageId = key === undefined ? randomUUID() : bytes(key) <= SHORTSTR_BYTES ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
    const returned = returnKey(exchange, routingKey, messageId);
    this.#returned.set(returned, '');
    let replyText: string | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        channel.publish(
          exchange,
          routingKey,
          Buffer.from(message.body),
          {
            persistent: true,
            mandatory: true,
            contentType: 'application/json',
            messageId,
            timestamp: Math.floor(Date.now() / 1000),
            appId: 'junction',
            // The deduplication plugin's header (rabbitmq-message-deduplication), where it is enabled.
            headers: { ...this.config.headers, ...(key !== undefined && { 'x-deduplication-header': messageId }) },
          },
          (error: unknown) => (error ? reject(error) : resolve()),
        );
      });
    } catch (error) {
      if (signal.aborted) throw error; // the pipeline makes it UPSTREAM_TIMEOUT
      // The broker's reason when it closed the channel (a missing exchange), else amqplib's.
      const reason = this.#closedBecause.get(channel) ?? this.#clean(error);
      const refused = /NOT_FOUND|ACCESS_REFUSED|PRECONDITION_FAILED/.test(reason);
      throw new UpstreamError(this.name, `${this.name}: RabbitMQ did not confirm the message to ${message.to}: ${reason}`, {
        transient: !refused,
        countsAsFailure: !refused,
      });
    } finally {
      replyText = this.#returned.get(returned);
      this.#returned.delete(returned);
    }
    if (replyText) {
      throw new UpstreamError(this.name, `${this.name}: RabbitMQ returned the message to ${message.to} unroutable (${replyText}): no queue is bound for it`, {
        transient: false,
        countsAsFailure: false,
        details: { replyText },
      });
    }
    return { messageId };
  }

  /** The connection is open and the broker answers a passive declare (the first consumed queue, else `amq.direct`). */
  protected async ping(signal: AbortSignal): Promise<void> {
    const session = this.#session;
    if (!session?.open) throw new Error(`not connected to RabbitMQ ${this.#server}${this.#lastError ? `: ${this.#lastError}` : ''}`);
    const probe = (async () => {
      const channel = await this.#aux(session);
      const first = this.config.consume[0];
      if (first) await channel.checkQueue(first.queue);
      else await channel.checkExchange('amq.direct');
    })();
    await Promise.race([
      probe.catch((error: unknown) => {
        throw new Error(this.#clean(error));
      }),
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
  }

  /** Cancels the consumers: RabbitMQ sends nothing more; deliveries in hand still settle on the open channel. */
  protected async stopConsuming(): Promise<void> {
    clearInterval(this.#lagTimer);
    const session = this.#session;
    const channel = session?.consume;
    if (!session?.open || !channel) return;
    await bounded(
      Promise.all(session.consumerTags.map((tag) => channel.cancel(tag).catch(() => undefined))),
      this.config.timeoutMs,
    );
  }

  /** Closes the connection: whatever was not acknowledged goes back to the queue. */
  protected async disconnect(): Promise<void> {
    await this.#reconnecting;
    const session = this.#session;
    this.#session = undefined;
    if (!session?.open) return;
    session.open = false;
    const closed = await bounded(session.model.close().then(() => true), this.config.timeoutMs);
    if (closed !== true) {
      // No close-ok in time (a dead peer): drop the socket; the broker requeues on its own.
      (session.model.connection as unknown as { stream?: { destroy(): void } }).stream?.destroy();
    }
  }

  /** One line of broker or socket text, without a secret (the hub scrubs again anyway). */
  #clean(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    let out = this.deps.scrub(text.replace(/\s+/g, ' ').trim().slice(0, 500));
    if (this.#password) out = out.split(this.#password).join('[REDACTED]');
    return out;
  }
}

/** Whether an exchange exists, asked on a channel of its own (a passive declare of a missing one closes its channel). */
async function exists(model: Amqp.ChannelModel, exchange: string): Promise<boolean> {
  const probe = await model.createChannel();
  probe.on('error', () => undefined);
  try {
    await probe.checkExchange(exchange);
    await probe.close().catch(() => undefined);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 404) return false;
    throw error;
  }
}

function returnKey(exchange: string, routingKey: string, messageId: string): string {
  return `${exchange}\0${routingKey}\0${messageId}`;
}

/** `work`'s result, or undefined once `ms` passed first. */
async function bounded<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([work.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
