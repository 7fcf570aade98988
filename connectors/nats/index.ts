import { defineConnectorType, publishDirective } from '../../src/index.ts';
import { NatsConnector, natsConfigSchema } from './connector.ts';

/**
 * `type: nats`: NATS JetStream. Consumes durable pull consumers into the hub's event log (stored,
 * then acknowledged; dead letters under `<name>.dead`) and publishes `@publish` mutations,
 * answering once JetStream acknowledged the message.
 */
export const natsConnector = defineConnectorType({
  type: 'nats',
  schema: natsConfigSchema,
  create: (name, config, deps) => new NatsConnector(name, config, deps),
  directives: [publishDirective],
});
