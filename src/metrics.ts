import type { ApolloServerPlugin } from '@apollo/server';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry });
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
