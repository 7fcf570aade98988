import { existsSync } from 'node:fs';
import path from 'node:path';
import { builtinConnectorTypes } from '../connectors/index.ts';
import type { Connector, ConnectorDeps, ConnectorType, FieldDirective } from '../connectors/runtime/contract.ts';
import { isConnectorType } from '../connectors/runtime/define.ts';
import type { CommonOptions } from '../connectors/runtime/options.ts';
import { importDefault } from './user-modules.ts';

/**
 * A binding directive and the connector types whose connectors it names: one type for most;
 * several for a directive they share (`@publish`: every type that lists the same object).
 */
export interface TypedDirective {
  directive: FieldDirective;
  types: string[];
}

/**
 * The connector types one hub knows: the built-in ones and those its config's `connectorTypes`
 * loads from the user's project. Config validation, schema binding and connector creation all
 * ask it, so a user's type gets exactly what a built-in one gets.
 */
export class ConnectorRegistry {
  readonly #types = new Map<string, ConnectorType<any, any>>();
  /** Where each user type came from, for codegen: type name → absolute module path. */
  readonly modules: ReadonlyMap<string, string>;

  constructor(types: readonly ConnectorType<any, any>[], modules: ReadonlyMap<string, string> = new Map()) {
    for (const t of types) this.#types.set(t.type, t);
    this.modules = modules;
  }

  get(type: string): ConnectorType<CommonOptions> | undefined {
    return this.#types.get(type);
  }

  get names(): string[] {
    return [...this.#types.keys()];
  }

  get directives(): TypedDirective[] {
    const typesOf = new Map<FieldDirective, string[]>();
    for (const t of this.#types.values()) {
      for (const directive of t.directives) typesOf.set(directive, [...(typesOf.get(directive) ?? []), t.type]);
    }
    return [...typesOf].map(([directive, types]) => ({ directive, types }));
  }

  /** Creates a connector object for every configured connector, by its type's `create`. */
  createConnectors(configs: Readonly<Record<string, CommonOptions>>, deps: (name: string) => ConnectorDeps): Record<string, Connector> {
    const connectors: Record<string, Connector> = {};
    for (const [name, config] of Object.entries(configs)) {
      const type = this.get(config.type);
      if (!type) throw new TypeError(`connectors.${name}.type: unknown connector type "${config.type}"`);
      connectors[name] = type.create(name, config, deps(name));
    }
    return connectors;
  }
}

export const builtinRegistry = new ConnectorRegistry(builtinConnectorTypes);

/** One `connectorTypes` entry that could not be used, and why (a sentence). */
export interface TypeProblem {
  key: string;
  file: string;
  message: string;
}

/**
 * Loads the `connectorTypes` modules (paths relative to `baseDir`): each must default-export a
 * `defineConnectorType(…)` whose `type` is the entry's key and names no built-in type, and
 * whose directives clash with no other type's.
 */
export async function loadConnectorTypes(
  entries: Readonly<Record<string, string>>,
  baseDir: string,
): Promise<{ registry: ConnectorRegistry; problems: TypeProblem[] }> {
  const problems: TypeProblem[] = [];
  const types: ConnectorType<any, any>[] = [...builtinConnectorTypes];
  const modules = new Map<string, string>();
  const directiveOwners = new Map(builtinRegistry.directives.map((d) => [d.directive.name, { directive: d.directive, types: d.types }]));
  for (const [key, modulePath] of Object.entries(entries)) {
    const file = path.resolve(baseDir, modulePath);
    const fail = (message: string) => problems.push({ key, file: modulePath, message });
    if (builtinRegistry.get(key)) {
      fail(`"${key}" is a built-in connector type; give yours another name`);
      continue;
    }
    if (!existsSync(file)) {
      fail('module not found');
      continue;
    }
    let exported: unknown;
    try {
      exported = await importDefault(file);
    } catch (error) {
      fail(`cannot load: ${(error as Error).message.split('\n')[0]}`);
      continue;
    }
    if (exported === undefined) {
      fail('has no default export; export default defineConnectorType({ … })');
      continue;
    }
    if (!isConnectorType(exported)) {
      fail('its default export is not a connector type; export default defineConnectorType({ … })');
      continue;
    }
    if (exported.type !== key) {
      fail(`defines connector type "${exported.type}", not "${key}"; use the same name in both places`);
      continue;
    }
    // The same directive object (`publishDirective`) is shared, not a clash.
    const clashes = exported.directives.filter((d) => directiveOwners.has(d.name) && directiveOwners.get(d.name)!.directive !== d);
    if (clashes.length > 0) {
      fail(clashes.map((d) => `directive @${d.name} is already defined by connector type ${directiveOwners.get(d.name)!.types.join(', ')}`).join('; '));
      continue;
    }
    for (const d of exported.directives) directiveOwners.set(d.name, { directive: d, types: [...(directiveOwners.get(d.name)?.types ?? []), key] });
    types.push(exported);
    modules.set(key, file);
  }
  return { registry: new ConnectorRegistry(types, modules), problems };
}
