// `junction/connectors`: the built-in connector types and their classes, for code resolvers that
// call a built-in connector (`context.connectors.api.send(…)`) and for `junction codegen`'s
// connector map. Public API, like src/index.ts.
export { amqpConnector as amqp } from '../connectors/amqp/index.ts';
export { graphqlConnector as graphql } from '../connectors/graphql/index.ts';
export { httpConnector as http } from '../connectors/http/index.ts';
export { mqttConnector as mqtt } from '../connectors/mqtt/index.ts';
export { redisConnector as redis } from '../connectors/redis/index.ts';
export { natsConnector as nats } from '../connectors/nats/index.ts';
export { smtpConnector as smtp } from '../connectors/smtp/index.ts';
export { sqlConnector as sql } from '../connectors/sql/index.ts';
export { webhookConnector as webhook } from '../connectors/webhook/index.ts';
export type { AmqpConfig, AmqpConnector } from '../connectors/amqp/connector.ts';
export type { GraphqlConnector, GraphqlExecuteOptions, GraphqlResponse, RemoteError } from '../connectors/graphql/connector.ts';
export type { HttpCall, HttpConnector, HttpMethod } from '../connectors/http/connector.ts';
export type { MqttConfig, MqttConnector } from '../connectors/mqtt/connector.ts';
export type { RedisConfig, RedisConnector } from '../connectors/redis/connector.ts';
export type { NatsConfig, NatsConnector } from '../connectors/nats/connector.ts';
export type { MailMessage, MailReceipt, SmtpConnector } from '../connectors/smtp/connector.ts';
export type { SqlConnector, SqlQueryOptions } from '../connectors/sql/connector.ts';
export type { WebhookConnector } from '../connectors/webhook/connector.ts';
