import { defineConnectorType } from '../../src/index.ts';
import { HttpConnector, httpConfigSchema } from './connector.ts';
import { httpDirective } from './directive.ts';

/** `type: http`: a REST/JSON API, and `@http` to bind fields to its calls. */
export const httpConnector = defineConnectorType({
  type: 'http',
  schema: httpConfigSchema,
  create: (name, config, deps) => new HttpConnector(name, config, deps),
  directives: [httpDirective],
});
