import { defineConnectorType } from '../../src/index.ts';
import { SqlConnector, sqlConfigSchema } from './connector.ts';
import { sqlDirective } from './directive.ts';

/** `type: sql`: SQLite, PostgreSQL or MySQL/MariaDB, and `@sql` to bind fields to statements. */
export const sqlConnector = defineConnectorType({
  type: 'sql',
  schema: sqlConfigSchema,
  create: (name, config, deps) => new SqlConnector(name, config, deps),
  directives: [sqlDirective],
});
