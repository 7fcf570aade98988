import { defineConnectorType } from '../../src/index.ts';
import { GraphqlConnector, graphqlConfigSchema } from './connector.ts';
import { graphqlDirective } from './directive.ts';

/** `type: graphql`: a remote GraphQL API, and `@graphql` to delegate fields to it. */
export const graphqlConnector = defineConnectorType({
  type: 'graphql',
  schema: graphqlConfigSchema,
  create: (name, config, deps) => new GraphqlConnector(name, config, deps),
  directives: [graphqlDirective],
});
