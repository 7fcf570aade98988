import { ErrorCode, HubError } from '../../src/errors.ts';
import { BaseConnector } from './base.ts';
import type { ConnectorDeps, ConnectorStatus, ConsumerStats, NewEvent, OutboundMessage, PublishConfirm } from './contract.ts';
import { MAX_ID_LENGTH, parseJsonPayload, utf8 } from './inbound-json.ts';
import { type CommonOptions, positiveInt } from './options.ts';

/** Options every queue connector type has (`amqp`, `nats`, `mqtt`, `redis`), beside its own. */
export const brokerOptions = {
  /**
   * Default 5. Deliveries of a message that cannot be stored as an event (not JSON, too deep, an
   * id too long) before it is dead-lettered: recorded under `<connector>.dead`, with the reason.
   */
  maxDeliveries: positiveInt().default(5),
};

export interface BrokerOptions extends CommonOptions {
  maxDeliveries: number;
}

/** One message as the broker delivered it, before the hub made an event of it. */
export interface InboundMessage {
  /** The event type (SPEC §6: AMQP `type` else the routing key; NATS subject; MQTT topic; Redis field `type` else the stream). */
  type: string;
  /** The delivery id (SPEC §6): one (connector, deliveryId) is stored once. */
  deliveryId: string;
  /** The message body: JSON. */
  body: Uint8Array | string;
  /**
   * Deliveries of this message so far, this one included (1: the first), as the broker counts
   * them; null when the broker cannot redeliver a message on request (MQTT): an unusable
   * message is then dead-lettered at once.
   */
  deliveries: number | null;
  /** The broker says it delivered this message before. */
  redelivered: boolean;
  /** Where it came from, for the dead letter: `queue orders`, `stream ORDERS`, `topic sensors/1`. */
  origin: string;
}

/**
 * What became of a message: `stored` and `duplicate` (already stored) and `dead` (recorded under
 * `<connector>.dead`) are settled — acknowledge it; `retry`: it cannot be stored as it is, and
 * has deliveries left — give it back to the broker for redelivery.
 */
export type IntakeOutcome = 'stored' | 'duplicate' | 'dead' | 'retry';

/** The connector is closing: the message was not stored; leave it unacknowledged for redelivery. */
export class IntakeAbortedError extends Error {
  constructor(connector: string) {
    super(`connector ${connector} is closing: the message is left for redelivery`);
    this.name = 'IntakeAbortedError';
  }
}

/** Longest pause between two attempts to store a message while the event log is failing. */
const MAX_STORE_BACKOFF_MS = 5_000;

/**
 * The part every queue connector shares: messages in, through `intake()`, into the event log
 * (stored, then acknowledged by the subclass; retried while the log fails; dead-lettered after
 * `maxDeliveries` when they cannot be stored), and messages out through `publish()`, each
 * answered once the broker confirmed it. It keeps the consumer's counts for `hub { connectors }`.
 *
 * A subclass connects in `start()`, hands each message to `intake()` and settles it with the
 * broker by the outcome, reports its connection with `connectionUp()` / `connectionLost()`,
 * implements `send()` (one publish, confirmed), `stopConsuming()` and `disconnect()`.
 * `close()` stops consuming, lets every message in hand settle (stored and acknowledged, or left
 * unacknowledged for redelivery), then disconnects.
 */
export abstract class BrokerConnector<C extends BrokerOptions = BrokerOptions> extends BaseConnector<C> {
  readonly #stats = { received: 0, stored: 0, duplicates: 0, redelivered: 0, deadLettered: 0, lastEventAt: null as string | null };
  readonly #inHand = new Set<Promise<unknown>>();
  readonly #closing = new AbortController();
  #connected = false;
  #lag: number | null = null;

  constructor(name: string, config: C, deps: ConnectorDeps) {
    super(name, config, deps);
  }

  /** Aborted when `close()` begins: stop reconnecting, stop waiting. */
  protected get stopping(): AbortSignal {
    return this.#closing.signal;
  }

  override status(): ConnectorStatus {
    const consumer: ConsumerStats = { connected: this.#connected, ...this.#stats, lag: this.#lag };
    return { ...super.status(), consumer };
  }

  /** The broker connection is up (again). */
  protected connectionUp(): void {
    this.#connected = true;
    this.reportHealth(true, null);
  }

  /** The broker connection is down: the connector shows unhealthy, with the reason, until it is back. */
  protected connectionLost(error: unknown): void {
    this.#connected = false;
    this.reportHealth(false, `connection lost: ${error instanceof Error ? error.message : String(error)}`);
  }

  /** Waits `ms`, or less when the connector starts closing. */
  protected pause(ms: number): Promise<void> {
    return pause(ms, this.stopping);
  }

  /**
   * Waits before trying again something that failed `failures` times in a row (reconnecting,
   * storing): full jitter, a random time up to `min(maxMs, baseMs × 2^failures)`; less when the
   * connector starts closing.
   */
  protected backoff(failures: number, baseMs = 100, maxMs = 5_000): Promise<void> {
    return this.pause(Math.random() * Math.min(maxMs, baseMs * 2 ** failures));
  }

  /** Messages waiting in the broker for this consumer, where the broker reports it. */
  protected setLag(lag: number | null): void {
    this.#lag = lag;
  }

  /**
   * Makes an event of one message and stores it, resolving once it is durable (or recorded as a
   * dead letter): the caller acknowledges it then, and only then. While the event log fails,
   * storing is retried with backoff (the message stays in hand, unacknowledged, so the broker's
   * prefetch stops the flow); when the connector closes meanwhile, rejects with
   * `IntakeAbortedError`: leave the message unacknowledged. `settle`, when given, is called with
   * the outcome (acknowledge or give back the message there): `close()` waits for it as well.
   */
  protected intake(message: InboundMessage, settle?: (outcome: IntakeOutcome) => unknown): Promise<IntakeOutcome> {
    // With `settle` (the subclass's ack or nack), close() waits for it too, not only for the store.
    const settled = settle ? this.#intake(message).then(async (outcome) => (await settle(outcome), outcome)) : this.#intake(message);
    this.#inHand.add(settled);
    const done = () => this.#inHand.delete(settled);
    settled.then(done, done);
    return settled;
  }

  async #intake(message: InboundMessage): Promise<IntakeOutcome> {
    const metrics = this.deps.metrics;
    this.#stats.received++;
    metrics.event?.(this.name, 'received');
    if (message.redelivered) this.#stats.redelivered++;

    const parsed = toEvent(this.name, message);
    if ('problem' in parsed) {
      metrics.eventRejected?.(this.name, 'malformed');
      if (message.deliveries !== null && message.deliveries < this.config.maxDeliveries) {
        this.deps.logger.warn({ deliveryId: message.deliveryId, deliveries: message.deliveries, reason: parsed.problem }, 'message not stored; redelivery asked');
        return 'retry';
      }
      const dead = deadLetter(this.name, message, parsed.problem);
      const { duplicate } = await this.#store(dead);
      if (!duplicate) {
        this.#stats.deadLettered++;
        metrics.event?.(this.name, 'dead_lettered');
        this.deps.logger.warn({ deliveryId: message.deliveryId, reason: parsed.problem }, `message dead-lettered to ${dead.source}`);
      }
      return 'dead';
    }
    const { duplicate, receivedAt } = await this.#store(parsed.event);
    if (duplicate) {
      this.#stats.duplicates++;
      metrics.event?.(this.name, 'duplicate');
      return 'duplicate';
    }
    this.#stats.stored++;
    this.#stats.lastEventAt = receivedAt;
    metrics.event?.(this.name, 'stored');
    return 'stored';
  }

  /** Appends through the pipeline (breaker, timeout, metrics), again and again until stored or closing. */
  async #store(event: NewEvent): Promise<{ duplicate: boolean; receivedAt: string }> {
    for (let failures = 0; ; failures++) {
      if (this.stopping.aborted) throw new IntakeAbortedError(this.name);
      try {
        const { value } = await this.call({
          key: `append:${event.deliveryId}`,
          safe: false,
          retryable: false,
          attempt: () => this.deps.eventLog.append(event),
        });
        return { duplicate: value.duplicate, receivedAt: value.event.receivedAt };
      } catch (error) {
        if (failures === 0) this.deps.logger.error({ err: error, deliveryId: event.deliveryId }, 'message not stored yet; retrying until the event log takes it');
        await this.backoff(failures, 100, MAX_STORE_BACKOFF_MS);
      }
    }
  }

  /**
   * Publishes one message (`@publish`) through the pipeline (breaker, rate limit, timeout,
   * metrics; not retried: a retry could publish twice where the broker does not dedupe), resolving
   * once the broker confirmed it.
   */
  async publish(message: OutboundMessage): Promise<PublishConfirm> {
    const problem = this.destinationProblem(message.to);
    if (problem !== undefined) throw new HubError(ErrorCode.BAD_USER_INPUT, `${this.name}: cannot publish to ${JSON.stringify(message.to)}: ${problem}`, { connector: this.name });
    const { value } = await this.call({
      key: `publish:${message.to}`,
      safe: false,
      retryable: false,
      attempt: (signal) => this.send(message, signal),
    });
    return value;
  }

  /**
   * Why `to` is not a destination this broker takes (a wildcard subject, an empty queue name), as
   * a sentence; undefined when it is. Checked before anything is sent: the caller gets
   * BAD_USER_INPUT, and the connector's failure counts are untouched.
   */
  protected destinationProblem(_to: string): string | undefined {
    return undefined;
  }

  /** One publish, resolved with the broker's confirmation; a refusal rejects with a connector error. */
  protected abstract send(message: OutboundMessage, signal: AbortSignal): Promise<PublishConfirm>;

  /** Stops taking new messages (cancel the consumers); messages in hand still settle. */
  protected abstract stopConsuming(): Promise<void>;

  /** Closes the broker connection; unacknowledged messages go back to the broker. */
  protected abstract disconnect(): Promise<void>;

  override async close(): Promise<void> {
    this.#closing.abort();
    await this.stopConsuming().catch((error: unknown) => this.deps.logger.warn({ err: error }, 'stopping the consumers failed'));
    await Promise.allSettled([...this.#inHand]);
    await this.disconnect().catch((error: unknown) => this.deps.logger.warn({ err: error }, 'disconnecting failed'));
    this.#connected = false;
    await super.close();
  }
}

/** The event a message makes, or why it cannot make one. */
function toEvent(source: string, message: InboundMessage): { event: NewEvent } | { problem: string } {
  for (const [what, value] of [['event type', message.type], ['delivery id', message.deliveryId]] as const) {
    if (value.length === 0) return { problem: `the ${what} is empty` };
    if (value.length > MAX_ID_LENGTH) return { problem: `the ${what} is longer than ${MAX_ID_LENGTH} characters` };
  }
  const text = typeof message.body === 'string' ? message.body : utf8(message.body);
  if (text === undefined) return { problem: 'the body is not valid UTF-8' };
  const parsed = parseJsonPayload(text);
  if ('problem' in parsed) return parsed;
  return { event: { source, type: message.type, deliveryId: message.deliveryId, payload: parsed.value } };
}

/** The record of a message that could not be stored, under `<connector>.dead`. */
function deadLetter(connector: string, message: InboundMessage, reason: string): NewEvent {
  const bytes = typeof message.body === 'string' ? Buffer.from(message.body) : Buffer.from(message.body);
  const text = utf8(bytes);
  return {
    source: `${connector}.dead`,
    type: message.type.slice(0, MAX_ID_LENGTH) || 'unknown',
    deliveryId: message.deliveryId.slice(0, MAX_ID_LENGTH) || 'unknown',
    payload: {
      reason,
      origin: message.origin,
      deliveries: message.deliveries,
      type: message.type,
      deliveryId: message.deliveryId,
      body: text ?? bytes.toString('base64'),
      encoding: text === undefined ? 'base64' : 'utf8',
    },
  };
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
