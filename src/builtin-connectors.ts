// `junction/connectors`: the built-in connector types and their classes, for code resolvers that
// call a built-in connector (`context.connectors.api.send(…)`) and for `junction codegen`'s
// connector map. Public API, like src/index.ts.
export { graphqlConnector as graphql } from '../connectors/graphql/index.ts';
export { httpConnector as http } from '../connectors/http/index.ts';
export { smtpConnector as smtp } from '../connectors/smtp/index.ts';
export { sqlConnector as sql } from '../connectors/sql/index.ts';
export { webhookConnector as webhook } from '../connectors/webhook/index.ts';
export type { GraphqlConnector, GraphqlExecuteOptions, GraphqlResponse, RemoteError } from '../connectors/graphql/connector.ts';
export type { HttpCall, HttpConnector, HttpMethod } from '../connectors/http/connector.ts';
export type { MailMessage, MailReceipt, SmtpConnector } from '../connectors/smtp/connector.ts';
export type { SqlConnector, SqlQueryOptions } from '../connectors/sql/connector.ts';
export type { WebhookConnector } from '../connectors/webhook/connector.ts';
