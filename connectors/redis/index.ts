import { defineConnectorType, publishDirective } from '../../src/index.ts';
import { RedisConnector, redisConfigSchema } from './connector.ts';

/**
 * `type: redis`: Redis Streams consumed through consumer groups into the hub's event log (stored,
 * then XACKed; pending entries claimed and delivered again), and `@publish` mutations as XADD.
 */
export const redisConnector = defineConnectorType({
  type: 'redis',
  schema: redisConfigSchema,
  create: (name, config, deps) => new RedisConnector(name, config, deps),
  directives: [publishDirective],
});
