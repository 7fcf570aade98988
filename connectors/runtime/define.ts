import type { Connector, ConnectorDeps, ConnectorType, FieldDirective } from './contract.ts';
import type { CommonOptions } from './options.ts';

// A registered symbol, so a type defined against another copy of this package is still known.
const BRAND = Symbol.for('junction.connectorType');

/** Letters, digits, `-` and `_`, starting with a letter: what `type:` in a config names. */
const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

export interface ConnectorTypeDefinition<C extends CommonOptions, K extends Connector> {
  /** The name config entries use in `type:`. */
  type: string;
  /** The config schema: `connectorConfig({ …the type's own keys })`. */
  schema: ConnectorType<C, K>['schema'];
  /** Makes one connector from its validated config; called once per configured connector. */
  create(name: string, config: C, deps: ConnectorDeps): K;
  /** Default []. Binding directives (`@crm(…)`) for fields served by this type's connectors. */
  directives?: readonly FieldDirective[];
}

/**
 * Declares a connector type: what a module named in `connectorTypes` default-exports, and how
 * the built-in types are declared. Checks the definition now, naming the bad value.
 */
export function defineConnectorType<C extends CommonOptions, K extends Connector>(
  definition: ConnectorTypeDefinition<C, K>,
): ConnectorType<C, K> {
  const { type, schema, create, directives = [] } = definition;
  if (typeof type !== 'string' || !TYPE_NAME.test(type)) {
    throw new TypeError(`defineConnectorType: type must be letters, digits, - and _, starting with a letter: ${JSON.stringify(type)}`);
  }
  if (typeof (schema as { safeParse?: unknown } | undefined)?.safeParse !== 'function') {
    throw new TypeError(`defineConnectorType(${type}): schema must be a zod schema (connectorConfig({ … }))`);
  }
  if (typeof create !== 'function') throw new TypeError(`defineConnectorType(${type}): create must be a function`);
  for (const d of directives) {
    if (typeof d?.name !== 'string' || typeof d.sdl !== 'string' || typeof d.bind !== 'function') {
      throw new TypeError(`defineConnectorType(${type}): each directive needs name, sdl and bind()`);
    }
  }
  return Object.freeze({ type, schema, create, directives: Object.freeze([...directives]), [BRAND]: true });
}

/** Whether a value was made by defineConnectorType (by any copy of this package). */
export function isConnectorType(value: unknown): value is ConnectorType {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
