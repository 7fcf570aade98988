import type { ConnectorType } from './runtime/contract.ts';
import { amqpConnector } from './amqp/index.ts';
import { graphqlConnector } from './graphql/index.ts';
import { httpConnector } from './http/index.ts';
import { mqttConnector } from './mqtt/index.ts';
import { redisConnector } from './redis/index.ts';
import { smtpConnector } from './smtp/index.ts';
import { natsConnector } from './nats/index.ts';
import { sqlConnector } from './sql/index.ts';
import { webhookConnector } from './webhook/index.ts';

/**
 * The connector types the hub ships, declared with the same `defineConnectorType` a user's
 * type uses. Adding a type is its folder under connectors/ and one line here.
 */
// `any`: each type validates its own config type; the list holds them all.
export const builtinConnectorTypes: readonly ConnectorType<any, any>[] = [
  httpConnector,
  graphqlConnector,
  sqlConnector,
  webhookConnector,
  smtpConnector,
  natsConnector,
  redisConnector,
  amqpConnector,
  mqttConnector,
];
