import { defineConnectorType, publishDirective } from '../../src/index.ts';
import { AmqpConnector, amqpConfigSchema } from './connector.ts';

/**
 * `type: amqp`: RabbitMQ. Consumes queues into the hub's event log (acknowledged once stored;
 * dead letters under `<connector>.dead`) and publishes `@publish` mutations with publisher confirms.
 */
export const amqpConnector = defineConnectorType({
  type: 'amqp',
  schema: amqpConfigSchema,
  create: (name, config, deps) => new AmqpConnector(name, config, deps),
  directives: [publishDirective],
});
