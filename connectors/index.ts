import type { Connector, ConnectorDeps, ConnectorFactory } from './connector.ts';

/**
 * The registry of connector types: adding a type is its folder under connectors/ and one line
 * here. Empty until the connector runtime lands.
 */
export const connectorTypes: Record<string, ConnectorFactory> = {};

/** Creates a connector object for every configured connector, by its type's factory. */
export function createConnectors(
  configs: Record<string, { type: string; required: boolean }>,
  deps: ConnectorDeps,
): Record<string, Connector> {
  const connectors: Record<string, Connector> = {};
  for (const [name, config] of Object.entries(configs)) {
    const factory = connectorTypes[config.type];
    if (!factory) throw new TypeError(`connectors.${name}.type: unknown connector type "${config.type}"`);
    connectors[name] = factory.create(name, config, { ...deps, logger: deps.logger.child({ connector: name }) });
  }
  return connectors;
}
