import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { IClientOptions, IConnackPacket, IDisconnectPacket, IPublishPacket, ISubscriptionGrant, MqttClient } from 'mqtt';
import type mqttModule from 'mqtt';
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

// mqtt.js loads with the first mqtt connector (about 120 ms): `junction check` and hubs without one do not pay for it.
const require = createRequire(import.meta.url);
let loaded: typeof mqttModule | undefined;
const mqttLib = () => (loaded ??= require('mqtt') as typeof mqttModule);

const URL_EXPECTED = 'expected an mqtt://, mqtts://, ws:// or wss:// URL';
const SCHEMES = new Set(['mqtt', 'mqtts', 'ws', 'wss']);

/**
 * The MQTT 5 user property that carries a message's delivery id. `@publish` sets it (the
 * idempotency key, else a random UUID); a consumed message that has it is stored once per value.
 */
export const MESSAGE_ID_PROPERTY = 'message-id';

/** Longest topic MQTT allows, in UTF-8 bytes. */
const MAX_TOPIC_BYTES = 65_535;

/** PUBACK reason codes that say the broker itself failed (not the message, the topic or the permissions). */
const BROKER_FAILURE_CODES = new Set([0x80, 0x83, 0x89]);

/** Why a topic filter cannot be subscribed to (as "expected …" text), or undefined when it can. */
function topicFilterProblem(filter: string): string | undefined {
  let rest = filter;
  const shared = /^\$share\/([^/]*)\/(.*)$/s.exec(filter);
  if (filter.startsWith('$share/')) {
    if (!shared || shared[1] === '' || /[+#]/.test(shared[1]!)) return 'a shared subscription as $share/<group>/<topic filter>, the group without +, # or /';
    rest = shared[2]!;
  }
  if (rest === '') return 'a topic filter (not empty)';
  if (rest.includes('\0')) return 'a topic filter without a NUL character';
  if (Buffer.byteLength(rest) > MAX_TOPIC_BYTES) return `a topic filter of at most ${MAX_TOPIC_BYTES} bytes`;
  const levels = rest.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return 'a topic filter with # only as the whole last level (sensors/#)';
    if (level.includes('+') && level !== '+') return 'a topic filter with + only as a whole level (sensors/+/temperature)';
  }
  return undefined;
}

const consumeEntry = z.strictObject({
  /**
   * The topic filter to subscribe to: `sensors/+/temperature`, `orders/#`, or a shared
   * subscription `$share/<group>/<filter>` (several hub instances split the messages).
   */
  topic: z.string({ error: 'expected a topic filter' }).superRefine((topic, ctx) => {
    const problem = topicFilterProblem(topic);
    if (problem) ctx.addIssue({ code: 'custom', message: `expected ${problem}`, params: { complete: true } });
  }),
  /**
   * Default 1. The subscription's QoS: only 1. At-least-once is what the hub promises: QoS 0 has
   * no acknowledgement and no redelivery, and QoS 2's handshake hands a message over before it is
   * stored (the hub dedupes by the message-id property instead).
   */
  qos: z
    .literal(1, { error: 'expected 1 (at-least-once: QoS 0 is never redelivered, and QoS 2 hands a message over before the hub stored it)' })
    .default(1),
});

export const mqttConfigSchema = connectorConfig({
  /**
   * The broker: `mqtt://host:1883`, `mqtts://host:8883` (TLS), `ws://` or `wss://` (MQTT over
   * WebSocket, with its path). Credentials may be given as user-info
   * (`mqtt://user:password@host`, URL-encoded), a secret like `auth`.
   */
  url: z.string({ error: URL_EXPECTED }).superRefine((value, ctx) => {
    // Names the scheme at most, never the URL: it may hold a password.
    const { scheme, url } = urlParts(value);
    if (scheme && SCHEMES.has(scheme) && url?.hostname) {
      if (scheme.startsWith('mqtt') && ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash)) {
        ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED}; an mqtt:// URL has no path or query (options are keys of the connector)`, params: { complete: true } });
      }
      return;
    }
    const got = scheme ? `a ${scheme && SCHEMES.has(scheme) ? 'malformed ' : ''}"${scheme}:" URL` : 'no URL scheme';
    ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED}, got ${got}`, params: { complete: true } });
  }),
  /**
   * Default []. The topics to consume into the event log (source: the connector's name, type:
   * the topic). A connector with `consume` needs a `clientId`.
   */
  consume: z.array(consumeEntry, { error: 'expected a list of { topic, qos }' }).default([]),
  /**
   * Default: a random id, with a clean session (publishing only); required with `consume`. The
   * MQTT client id of the hub's persistent session: the broker keeps its subscriptions and the
   * QoS 1 messages that arrive while the hub is away, for `sessionExpirySec`. Unique per hub
   * instance: two connections with one client id take the session from each other.
   */
  clientId: str('a client id')
    .max(256, { error: 'expected a client id of at most 256 characters' })
    .optional(),
  /** Default 5. The MQTT protocol: 5 (MQTT 5.0) or 4 (MQTT 3.1.1: no message-id property, no PUBACK reason codes). */
  protocolVersion: z.union([z.literal(5), z.literal(4)], { error: 'expected 5 (MQTT 5.0) or 4 (MQTT 3.1.1)' }).default(5),
  /**
   * Default 604800 (7 days). MQTT 5: seconds the broker keeps the hub's session (subscriptions and
   * queued messages) after the hub disconnected. With MQTT 3.1.1 the broker decides.
   */
  sessionExpirySec: positiveInt().max(0xffff_ffff, { error: 'expected at most 4294967295 seconds' }).default(604_800),
  /** Default 30. Seconds between keep-alive pings; a broker silent for 1.5 times this is a lost connection. */
  keepaliveSec: positiveInt().max(0xffff, { error: 'expected at most 65535 seconds' }).default(30),
  /** Default 1000. The first wait before reconnecting; it doubles (with jitter) after each failed attempt. */
  reconnectDelayMs: positiveInt().default(1000),
  /** Default 30000. The longest wait between two reconnection attempts. */
  maxReconnectDelayMs: positiveInt().default(30_000),
  ...brokerOptions,
}).superRefine((c, ctx) => {
  // Key names only in these messages, never a value: `params.complete` stops the loader adding one.
  if (c.consume.length > 0 && c.clientId === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['clientId'],
      message: 'expected a client id with consume: the broker keeps the persistent session (and the messages queued while the hub is away) under it',
      params: { complete: true },
    });
  }
  if (c.auth && c.auth.type !== 'basic') {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'type'],
      message: `expected basic (MQTT username and password) for an mqtt connector, got ${c.auth.type}`,
      params: { complete: true },
    });
  }
  if (c.auth && URL.canParse(c.url) && new URL(c.url).username) {
    ctx.addIssue({ code: 'custom', path: ['auth'], message: 'expected credentials in the url or in auth, not both', params: { complete: true } });
  }
  if (c.cache) {
    ctx.addIssue({ code: 'custom', path: ['cache'], message: 'does not apply to an mqtt connector: publishing is never cached', params: { complete: true } });
  }
  if (Object.keys(c.headers).length > 0) {
    ctx.addIssue({ code: 'custom', path: ['headers'], message: 'does not apply to an mqtt connector: MQTT has no headers', params: { complete: true } });
  }
  if (c.maxReconnectDelayMs < c.reconnectDelayMs) {
    ctx.addIssue({ code: 'custom', path: ['maxReconnectDelayMs'], message: 'expected at least reconnectDelayMs', params: { complete: true } });
  }
});
export type MqttConfig = z.output<typeof mqttConfigSchema>;

/**
 * `type: mqtt`: consumes topics of an MQTT broker into the event log through a persistent
 * session (QoS 1; the PUBACK is sent only once the message is stored) and publishes `@publish`
 * messages at QoS 1, answered on the broker's PUBACK.
 *
 * mqtt.js hands incoming PUBLISH packets to `handleMessage` one at a time and sends the PUBACK
 * when its callback is called: the callback is called after `intake()` settled the message, on
 * the connection it came on (a PUBACK for a connection that is gone is never sent: the broker
 * redelivers that message when the session resumes).
 */
export class MqttConnector extends BrokerConnector<MqttConfig> {
  #client: MqttClient | undefined;
  /** Counts closed connections: a message is acknowledged only on the connection it came on. */
  #generation = 0;
  #failedAttempts = 0;
  #lastError: string | undefined;
  /** MQTT 3.1.1: the subscriptions made by this process (a resumed session keeps them). */
  #subscribedOnce = false;
  #firstReady: (() => void) | undefined;
  /** Publishes waiting for their PUBACK: each fails when the connection closes. */
  readonly #publishing = new Set<() => void>();
  readonly #clientId: string;
  readonly #persistent: boolean;

  constructor(name: string, config: MqttConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.#persistent = config.consume.length > 0;
    this.#clientId = config.clientId ?? `junction-${name}-${randomUUID().slice(0, 8)}`;
  }

  override async start(): Promise<void> {
    const { config } = this;
    const url = new URL(config.url);
    const username = config.auth?.type === 'basic' ? config.auth.username : url.username ? decodeURIComponent(url.username) : undefined;
    const password = config.auth?.type === 'basic' ? config.auth.password : url.password ? decodeURIComponent(url.password) : undefined;
    url.username = '';
    url.password = '';
    const options: IClientOptions = {
      clientId: this.#clientId,
      clean: !this.#persistent,
      protocolVersion: config.protocolVersion,
      keepalive: config.keepaliveSec,
      connectTimeout: config.timeoutMs,
      reconnectPeriod: config.reconnectDelayMs,
      // A refused CONNACK (server unavailable, credentials being rotated) is retried like an outage.
      reconnectOnConnackError: true,
      // The connector subscribes on every connection itself (see #onConnect).
      resubscribe: false,
      queueQoSZero: false,
      manualConnect: true,
      ...(username !== undefined && { username }),
      ...(password !== undefined && { password }),
      ...(config.protocolVersion === 5 && {
        properties: { sessionExpiryInterval: this.#persistent ? config.sessionExpirySec : 0 },
      }),
    };
    const client = mqttLib().connect(url.toString(), options);
    this.#client = client;
    client.handleMessage = (packet, callback) => this.#receive(packet as IPublishPacket, callback);
    client.on('connect', (connack) => void this.#onConnect(client, connack));
    client.on('close', () => this.#onClose(client));
    client.on('error', (error) => {
      this.#lastError = error.message;
    });
    client.on('disconnect', (packet: IDisconnectPacket) => {
      const reason = packet.properties?.reasonString ?? reasonText(packet.reasonCode);
      this.#lastError = `the broker closed the connection: ${reason}${packet.reasonCode === 0x8e ? ` (another client connected with the client id ${this.#clientId})` : ''}`;
    });

    // The hub serves once the broker answered, or after timeoutMs without it (then unhealthy, reconnecting).
    const ready = new Promise<void>((resolve) => (this.#firstReady = resolve));
    client.connect();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      ready.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), config.timeoutMs))),
    ]);
    clearTimeout(timer);
    this.#firstReady = undefined;
    if (timedOut && !client.connected) {
      this.connectionLost(new Error(this.#lastError ?? `no connection to the broker within ${config.timeoutMs} ms`));
      this.deps.logger.warn({ error: this.#lastError }, 'MQTT broker not reachable yet; reconnecting in the background');
    }
  }

  async #onConnect(client: MqttClient, connack: IConnackPacket): Promise<void> {
    const { config } = this;
    this.#failedAttempts = 0;
    client.options.reconnectPeriod = config.reconnectDelayMs;
    this.#lastError = undefined;
    const sessionPresent = connack.sessionPresent === true;
    this.deps.logger.info({ clientId: this.#clientId, sessionPresent }, 'connected to the MQTT broker');
    try {
      // MQTT 5: subscribed on every connection (a change of `consume` applies), retained messages
      // only for a new subscription (rh 1). MQTT 3.1.1 has no such option: subscribed once per
      // process, and again only when the broker lost the session.
      if (config.consume.length > 0 && (config.protocolVersion === 5 || !this.#subscribedOnce || !sessionPresent)) {
        const granted = await new Promise<ISubscriptionGrant[]>((resolve, reject) => {
          const subscriptions = Object.fromEntries(config.consume.map((c) => [c.topic, { qos: c.qos, ...(config.protocolVersion === 5 && { rh: 1 }) }]));
          client.subscribe(subscriptions, (error, grants) => (error ? reject(error) : resolve(grants ?? [])));
        });
        const refused = granted.filter((g) => g.qos !== 1 && g.qos !== 2 && g.qos !== 0);
        if (refused.length > 0) throw new Error(`the broker refused the subscription to ${refused.map((g) => g.topic).join(', ')} (${reasonText(refused[0]!.qos)})`);
        const downgraded = granted.filter((g) => g.qos === 0);
        if (downgraded.length > 0) throw new Error(`the broker granted only QoS 0 for ${downgraded.map((g) => g.topic).join(', ')}: messages could be lost`);
        this.#subscribedOnce = true;
      }
      if (client.connected) this.connectionUp();
    } catch (error) {
      if (client.connected) this.reportHealth(false, `subscribing failed: ${(error as Error).message}`);
      this.deps.logger.error({ err: error }, 'subscribing failed');
    }
    this.#firstReady?.();
  }

  #onClose(client: MqttClient): void {
    this.#generation++;
    for (const fail of [...this.#publishing]) fail();
    if (this.stopping.aborted) return;
    this.connectionLost(new Error(this.#lastError ?? 'the connection to the broker closed'));
    // mqtt.js waits `reconnectPeriod` before each attempt: doubled after each failure, with jitter, capped.
    const { reconnectDelayMs, maxReconnectDelayMs } = this.config;
    const delay = Math.min(maxReconnectDelayMs, reconnectDelayMs * 2 ** Math.min(this.#failedAttempts++, 20));
    client.options.reconnectPeriod = Math.max(reconnectDelayMs, Math.round(delay * (0.5 + Math.random() / 2)));
  }

  /** One incoming PUBLISH (mqtt.js calls the next only after `acknowledge`): stored, then acknowledged. */
  #receive(packet: IPublishPacket, acknowledge: (error?: Error) => void): void {
    const generation = this.#generation;
    // Closing: not taken, not acknowledged; the broker redelivers it when the session resumes.
    if (this.stopping.aborted) return;
    const message: InboundMessage = {
      type: packet.topic,
      deliveryId: messageIdOf(packet) ?? randomUUID(),
      body: packet.payload,
      // MQTT cannot give a message back for redelivery: one that cannot be stored is dead-lettered at once.
      deliveries: null,
      redelivered: packet.dup,
      origin: `topic ${packet.topic}`,
    };
    this.intake(message).then(
      (outcome) => {
        if (outcome === 'retry') return; // not with deliveries: null
        if (generation !== this.#generation) {
          this.deps.logger.debug({ deliveryId: message.deliveryId }, 'settled after its connection closed: the broker redelivers it');
          return;
        }
        acknowledge();
      },
      (error: unknown) => {
        // Left unacknowledged: the broker redelivers it when the session resumes.
        if (!(error instanceof IntakeAbortedError)) this.deps.logger.error({ err: error, deliveryId: message.deliveryId }, 'message not stored');
      },
    );
  }

  /**
   * Why `to` is not a topic to publish to, or undefined: a topic is not empty, has no wildcard
   * (+ or #), no empty level, no NUL, does not start with $ (the broker's topics), fits in 65535 bytes.
   */
  protected override destinationProblem(to: string): string | undefined {
    if (to === '') return 'a topic is not empty';
    if (/[+#]/.test(to)) return 'a topic to publish to has no wildcard (+ or #)';
    if (to.includes('\0')) return 'a topic has no NUL character';
    if (to.startsWith('$')) return 'topics starting with $ are the broker\'s ($SYS, $share)';
    if (to.split('/').includes('')) return 'a topic has no empty level (// or a / at either end; an empty template argument?)';
    if (Buffer.byteLength(to) > MAX_TOPIC_BYTES) return `a topic is at most ${MAX_TOPIC_BYTES} bytes`;
    return undefined;
  }

  /**
   * One QoS 1 PUBLISH, resolved on the broker's PUBACK. Never queued for later: not connected, it
   * is refused at once; when the connection closes before the PUBACK, or the pipeline's timeout
   * comes first, it fails and is taken out of mqtt.js's outgoing store, so it is not sent again
   * after the caller was told it failed (it may have reached the broker before: the message-id
   * property, the idempotency key when there is one, lets a consumer store it once).
   */
  protected async send(message: OutboundMessage, signal: AbortSignal): Promise<PublishConfirm> {
    const client = this.#client;
    if (!client?.connected) {
      throw new UpstreamError(this.name, `${this.name}: not connected to the MQTT broker (${this.#lastError ?? 'connecting'}); nothing was published`, {
        transient: true,
        countsAsFailure: true,
      });
    }
    const messageId = message.idempotencyKey ?? randomUUID();
    return new Promise<PublishConfirm>((resolve, reject) => {
      let packetId: number | undefined;
      let settled = false;
      const settle = (error: Error | undefined) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        this.#publishing.delete(onClose);
        if (error) {
          // Its callback then runs with "Message removed", ignored: settled already.
          if (packetId !== undefined) client.removeOutgoingMessage(packetId);
          reject(error);
        } else resolve({ messageId });
      };
      const onAbort = () => settle(signal.reason as Error);
      const onClose = () =>
        settle(
          new UpstreamError(
            this.name,
            `${this.name}: the connection to the MQTT broker closed before it confirmed the message (${this.#lastError ?? 'no reason given'}); it is not sent again`,
            { transient: true, countsAsFailure: true },
          ),
        );
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#publishing.add(onClose);
      client.publish(
        message.to,
        message.body,
        {
          qos: 1,
          ...(this.config.protocolVersion === 5 && {
            properties: { contentType: 'application/json', payloadFormatIndicator: true, userProperties: { [MESSAGE_ID_PROPERTY]: messageId } },
          }),
          // Called synchronously once the packet has its packet id (mqtt.js's in-memory store).
          cbStorePut: () => {
            packetId = client.getLastMessageId();
          },
        },
        (error) => {
          if (settled) return;
          packetId = undefined; // acknowledged or refused: no longer in the outgoing store
          settle(error ? this.#publishError(error) : undefined);
        },
      );
    });
  }

  #publishError(error: Error): UpstreamError {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') {
      return new UpstreamError(this.name, `${this.name}: the broker refused the message: ${reasonText(code)} (reason code 0x${code.toString(16)})`, {
        transient: false,
        countsAsFailure: BROKER_FAILURE_CODES.has(code),
        details: { reasonCode: code },
      });
    }
    return new UpstreamError(this.name, `${this.name}: publishing failed: ${this.deps.scrub(error.message)}`, { transient: true, countsAsFailure: true });
  }

  /** Connected to the broker now (mqtt.js keeps the connection alive with PINGREQ). */
  protected async ping(): Promise<void> {
    if (!this.#client?.connected) throw new Error(`not connected to the MQTT broker: ${this.#lastError ?? 'connecting'}`);
  }

  /** Nothing to send: `#receive` takes no message once closing began (the subscriptions stay in the session). */
  protected async stopConsuming(): Promise<void> {}

  /** DISCONNECT (the session stays for `sessionExpirySec`); unacknowledged messages stay with the broker. */
  protected async disconnect(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    let timer: NodeJS.Timeout | undefined;
    const ended = client.connected
      ? await Promise.race([
          client.endAsync(false).then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.config.timeoutMs))),
        ])
      : false;
    clearTimeout(timer);
    if (!ended) await client.endAsync(true);
  }
}

/** The message-id user property (MQTT 5), when the message has one. */
function messageIdOf(packet: IPublishPacket): string | undefined {
  const value = packet.properties?.userProperties?.[MESSAGE_ID_PROPERTY];
  const id = Array.isArray(value) ? value[0] : value;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function reasonText(code: number | undefined): string {
  if (code === undefined) return 'no reason given';
  const text = (mqttLib().ReasonCodes as Record<number, string>)[code];
  return text || `reason code 0x${code.toString(16)}`;
}
