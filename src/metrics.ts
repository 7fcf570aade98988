import type { ApolloServerPlugin } from '@apollo/server';
import type { ConnectorMetrics } from '../connectors/runtime/contract.ts';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type OperationType = 'query' | 'mutation' | 'subscription' | 'unknown';

const MAX_NAME_LENGTH = 64;


/**
 * The hub's Prometheus registry: process metrics plus GraphQL operations by type and name.
 * One registry per hub, so several hubs in one process (tests) do not collide.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #operations = new Counter({
    name: 'junction_graphql_operations_total',
    help: 'GraphQL operations executed, by operation type, name and outcome (success or error).',
    labelNames: ['type', 'name', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly #duration = new Histogram({
    name: 'junction_graphql_operation_duration_seconds',
    help: 'Time from receiving a GraphQL operation to its response, by operation type and name.',
    labelNames: ['type', 'name'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly #connectorRequests = new Counter({
    name: 'junction_connector_requests_total',
    help: 'Calls through a connector pipeline (cache hits excluded), by outcome: success, refused (the upstream answered with an error that is not its failure, e.g. a 404), error, timeout, circuit_open, rate_limited.',
    labelNames: ['connector', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly #connectorDuration = new Histogram({
    name: 'junction_connector_request_duration_seconds',
    help: 'Time a call spent in the connector pipeline (retries included).',
    labelNames: ['connector'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly #breakerState = new Gauge({
    name: 'junction_connector_breaker_state',
    help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open.',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly #breakerTransitions = new Counter({
    name: 'junction_connector_breaker_transitions_total',
    help: 'Circuit breaker transitions, by the state entered.',
    labelNames: ['connector', 'state'] as const,
    registers: [this.registry],
  });
  readonly #cache = new Counter({
    name: 'junction_connector_cache_total',
    help: 'Cache lookups of connector calls: hit, miss, or stale (served while the breaker was open).',
    labelNames: ['connector', 'result'] as const,
    registers: [this.registry],
  });
  readonly #retries = new Counter({
    name: 'junction_connector_retries_total',
    help: 'Attempts made again after a transient failure.',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly #rateLimited = new Counter({
    name: 'junction_connector_rate_limited_total',
    help: "Calls refused by the connector's own rate limit.",
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly #batchSize = new Histogram({
    name: 'junction_dataloader_batch_size',
    help: 'Keys per DataLoader batch, by the field that batched them.',
    labelNames: ['connector', 'field'] as const,
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
    registers: [this.registry],
  });

  readonly #statements = new Counter({
    name: 'junction_sql_statements_total',
    help: 'SQL statements run by a sql connector (a batch is one statement).',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly #pools = new Map<string, () => { total: number; idle: number; waiting: number }>();

  readonly #events = {
    received: new Counter({
      name: 'junction_events_received_total',
      help: 'Inbound events (webhook requests, queue messages) that reached their connector, by event log source.',
      labelNames: ['source'] as const,
      registers: [this.registry],
    }),
    stored: new Counter({
      name: 'junction_events_stored_total',
      help: 'Inbound events stored in the event log (new ones), by source.',
      labelNames: ['source'] as const,
      registers: [this.registry],
    }),
    duplicate: new Counter({
      name: 'junction_events_duplicate_total',
      help: 'Redeliveries of an event already stored (same delivery id): stored once, by source.',
      labelNames: ['source'] as const,
      registers: [this.registry],
    }),
    dead_lettered: new Counter({
      name: 'junction_events_dead_lettered_total',
      help: 'Queue messages that could not be stored as events after maxDeliveries: recorded under <connector>.dead, by source.',
      labelNames: ['source'] as const,
      registers: [this.registry],
    }),
  };
  readonly #eventsRejected = new Counter({
    name: 'junction_events_rejected_total',
    help: 'Inbound events refused, by source and reason (bad_signature, missing_header, stale_timestamp, malformed, unavailable, rate_limited).',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });

  readonly #deliveryLag = new Histogram({
    name: 'junction_event_delivery_lag_seconds',
    help: 'Time from receiving an event to handing it to its live subscriptions (once per group of identical subscriptions), by source. Replayed events are not counted.',
    labelNames: ['source'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** A live event handed to its subscriptions `seconds` after it was received. */
  eventDelivered(source: string, seconds: number): void {
    this.#deliveryLag.observe({ source }, Math.max(0, seconds));
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const pools = this.#pools;
    new Gauge({
      name: 'junction_connector_pool_connections',
      help: 'Connections of a connector pool: total, idle, and waiting (calls queued for one).',
      labelNames: ['connector', 'state'] as const,
      registers: [this.registry],
      collect() {
        for (const [connector, read] of pools) {
          const stats = read();
          for (const state of ['total', 'idle', 'waiting'] as const) this.set({ connector, state }, stats[state]);
        }
      },
    });
  }

  /** The metrics of one connector, its label bound. */
  connector(connector: string): ConnectorMetrics {
    const state = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 } as const;
    let initialised = false;
    return {
      request: (outcome, seconds) => {
        this.#connectorRequests.inc({ connector, outcome });
        this.#connectorDuration.observe({ connector }, seconds);
      },
      breakerState: (s) => {
        this.#breakerState.set({ connector }, state[s]);
        if (initialised) this.#breakerTransitions.inc({ connector, state: s });
        initialised = true;
      },
      cache: (result) => this.#cache.inc({ connector, result }),
      retry: () => this.#retries.inc({ connector }),
      rateLimited: () => this.#rateLimited.inc({ connector }),
      batch: (field, size) => this.#batchSize.observe({ connector, field }, size),
      statements: (count) => this.#statements.inc({ connector }, count),
      pool: (read) => this.#pools.set(connector, read),
      event: (source, outcome) => this.#events[outcome].inc({ source }),
      eventRejected: (source, reason) => this.#eventsRejected.inc({ source, reason }),
    };
  }

  /**
   * Records one operation. `name` is the operation's own name when the document resolved to
   * one ("" for anonymous or unparsable operations), cut to 64 characters.
   */
  observe(type: OperationType, name: string | null | undefined, seconds: number, ok: boolean): void {
    const labels = { type, name: (name ?? '').slice(0, MAX_NAME_LENGTH) };
    this.#operations.inc({ ...labels, outcome: ok ? 'success' : 'error' });
    this.#duration.observe(labels, seconds);
  }

  /** Records every operation Apollo Server runs over HTTP. */
  apolloPlugin(): ApolloServerPlugin {
    const metrics = this;
    return {
      async requestDidStart() {
        const started = process.hrtime.bigint();
        return {
          async willSendResponse({ operation, operationName, errors, response }) {
            const single = response.body.kind === 'single' ? response.body.singleResult : undefined;
            const ok = !errors?.length && !single?.errors?.length;
            metrics.observe(
              operation?.operation ?? 'unknown',
              operation ? operationName : '',
              Number(process.hrtime.bigint() - started) / 1e9,
              ok,
            );
          },
        };
      },
    };
  }
}
