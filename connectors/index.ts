import type { Connector, ConnectorDeps, ConnectorType, FieldDirective } from './connector.ts';
import { graphqlConnector } from './graphql/index.ts';
import { httpConnector } from './http/index.ts';
import type { CommonOptions } from './runtime/options.ts';
import { sqlConnector } from './sql/index.ts';

/**
 * The registry of connector types: adding a type is its folder under connectors/ and one line
 * here.
 */
// `any`: each entry validates its own config type, and the registry holds them all.
export const connectorTypes: Record<string, ConnectorType<any>> = {
  http: httpConnector,
  graphql: graphqlConnector,
  sql: sqlConnector,
};

/** The binding directives of every registered type (`@http`, `@graphql`, …). */
export const fieldDirectives: FieldDirective[] = Object.values(connectorTypes).flatMap((t) => (t.directive ? [t.directive] : []));

/** Creates a connector object for every configured connector, by its type's factory. */
export function createConnectors(
  configs: Record<string, CommonOptions>,
  deps: (name: string) => ConnectorDeps,
): Record<string, Connector> {
  const connectors: Record<string, Connector> = {};
  for (const [name, config] of Object.entries(configs)) {
    const type = connectorTypes[config.type] as ConnectorType<CommonOptions> | undefined;
    if (!type) throw new TypeError(`connectors.${name}.type: unknown connector type "${config.type}"`);
    connectors[name] = type.create(name, config, deps(name));
  }
  return connectors;
}
