import { getDirective } from '@graphql-tools/utils';
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  getNamedType,
  getOperationAST,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  isAbstractType,
  isCompositeType,
  isInterfaceType,
  isObjectType,
  Kind,
  type SelectionSetNode,
} from 'graphql';
import { builtinConnectorTypes } from '../connectors/index.ts';
import type { CommonOptions } from '../connectors/runtime/options.ts';
import { SchemaError, type SchemaProblem } from './schema-problem.ts';

/** How a query's whole response may be cached (`server.responseCache`). */
export interface ResponsePlan {
  /** The smallest cache hint among the operation's fields. */
  ttlMs: number;
  /** Some field's value depends on who asks: the response is cached per caller. */
  perCaller: boolean;
  /** The types and `Type.field` coordinates it selects: what `@invalidates` names to drop it. */
  touches: ReadonlySet<string>;
}

/** What one field contributes to a response's cacheability. */
type FieldHint =
  /** Cached for ttlMs (its `@cache`, or its connector's `cache.ttlMs`). */
  | { kind: 'cached'; ttlMs: number; perCaller: boolean }
  /** No resolver of its own: a property of its parent's value, cached as long as its parent. */
  | { kind: 'inherit'; perCaller: boolean }
  /** A code resolver, or a connector field without a cache: nothing tells how long it holds. */
  | { kind: 'uncacheable' };

export interface CachePolicyOptions {
  /** The binding directives of the configured connector types (`@http`, …), by name. */
  bindingDirectives: readonly string[];
  /** The configured connectors, for their `cache.ttlMs`. */
  connectors: Readonly<Record<string, CommonOptions>>;
}

/** Binding directives whose connectors read the caller only through templates in their arguments. */
const BUILTIN_DIRECTIVES = new Set(builtinConnectorTypes.flatMap((t) => t.directives.map((d) => d.name)));

/**
 * Reads the schema's cache hints once and answers, per operation, whether and how its whole
 * response may be cached, and which cached responses a mutation drops (`@invalidates`).
 *
 * A field is cacheable when it has `@cache(ttlMs)`, or a binding directive whose connector has
 * `cache.ttlMs`; a field with no resolver under a cacheable parent inherits its parent's; a code
 * resolver without `@cache` is not (nothing says how long its answer holds). A response varies
 * by caller when a field has `@auth` (on it or its type), a binding reads `context.` in a template,
 * a connector type of the project's own binds it (its code may read the caller), or a code
 * resolver is cached by `@cache` (keyed by caller).
 */
export class CachePolicy {
  readonly #schema: GraphQLSchema;
  readonly #hints = new Map<GraphQLField<unknown, unknown>, FieldHint>();
  /** Mutation fields' `@invalidates(touches:)`. */
  readonly #invalidates = new Map<string, readonly string[]>();
  readonly #plans = new WeakMap<DocumentNode, Map<string, ResponsePlan | null>>();
  /** Who caches each field's values in the keyv store (src/cache-keys.ts), by `Type.field`. */
  readonly #owners = new Map<string, string[]>();
  /** Fields by the named type they return, for `@invalidates` naming a type. */
  readonly #returning = new Map<string, string[]>();

  constructor(schema: GraphQLSchema, options: CachePolicyOptions) {
    this.#schema = schema;
    const problems: SchemaProblem[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      const typeAuth = getDirective(schema, type, 'auth') !== undefined;
      for (const field of Object.values(type.getFields())) {
        this.#hints.set(field, hintOf(schema, field, typeAuth, options));
        const coordinate = `${type.name}.${field.name}`;
        this.#owners.set(coordinate, ownersOf(schema, field, coordinate, options));
        const returned = getNamedType(field.type).name;
        this.#returning.set(returned, [...(this.#returning.get(returned) ?? []), coordinate]);
        const touches = (getDirective(schema, field, 'invalidates')?.[0] as { touches?: string[] } | undefined)?.touches;
        if (!touches) continue;
        for (const name of touches.filter((n) => !this.#names(n))) {
          problems.push({ file: field.astNode?.loc?.source.name ?? 'schema', message: `${type.name}.${field.name} @invalidates: no type or field "${name}" in the schema` });
        }
        this.#invalidates.set(`${type.name}.${field.name}`, touches);
      }
    }
    if (problems.length > 0) throw new SchemaError(problems);
  }

  /** The plan of a query, or null when its response may not be cached (a mutation, a code resolver, …). */
  planOf(document: DocumentNode, operationName: string | null | undefined): ResponsePlan | null {
    let byName = this.#plans.get(document);
    if (!byName) this.#plans.set(document, (byName = new Map()));
    const name = operationName ?? '';
    let plan = byName.get(name);
    if (plan === undefined) byName.set(name, (plan = this.#plan(document, operationName)));
    return plan;
  }

  /** What a mutation's root fields declare with `@invalidates` (empty for anything else). */
  invalidatedBy(document: DocumentNode, operationName: string | null | undefined): string[] {
    const operation = getOperationAST(document, operationName);
    const root = this.#schema.getMutationType();
    if (operation?.operation !== 'mutation' || !root) return [];
    const names: string[] = [];
    const fragments = fragmentsOf(document);
    const visit = (selections: SelectionSetNode) => {
      for (const s of selections.selections) {
        if (s.kind === Kind.FIELD) names.push(...(this.#invalidates.get(`${root.name}.${s.name.value}`) ?? []));
        else if (s.kind === Kind.INLINE_FRAGMENT) visit(s.selectionSet);
        else {
          const fragment = fragments.get(s.name.value);
          if (fragment) visit(fragment.selectionSet);
        }
      }
    };
    visit(operation.selectionSet);
    return names;
  }

  /**
   * The cache owners (connectors, `field:Type.field`) whose cached values `@invalidates` names
   * reach: a field's own (for a plain field, whatever fetched its parent: the fields returning its
   * type); for a type, those of its fields and of every field that returns it.
   */
  ownersOf(names: readonly string[]): Set<string> {
    const owners = new Set<string>();
    const add = (coordinate: string) => {
      for (const owner of this.#owners.get(coordinate) ?? []) owners.add(owner);
    };
    for (const name of names) {
      if (name.includes('.')) {
        add(name);
        if (this.#owners.get(name)?.length) continue;
        for (const coordinate of this.#returning.get(name.split('.')[0]!) ?? []) add(coordinate);
        continue;
      }
      const type = this.#schema.getType(name);
      if (type && (isObjectType(type) || isInterfaceType(type))) for (const field of Object.keys(type.getFields())) add(`${name}.${field}`);
      for (const coordinate of this.#returning.get(name) ?? []) add(coordinate);
    }
    return owners;
  }

  #names(name: string): boolean {
    const [typeName, fieldName, ...rest] = name.split('.');
    const type = this.#schema.getType(typeName ?? '');
    if (!type || rest.length > 0) return false;
    return fieldName === undefined || ((isObjectType(type) || isInterfaceType(type)) && fieldName in type.getFields());
  }

  #plan(document: DocumentNode, operationName: string | null | undefined): ResponsePlan | null {
    const operation = getOperationAST(document, operationName);
    const root = this.#schema.getQueryType();
    if (operation?.operation !== 'query' || !root) return null;
    const fragments = fragmentsOf(document);
    const touches = new Set<string>();
    let ttlMs = Infinity;
    let perCaller = false;
    /** False as soon as one field cannot be cached. `inherited`: the parent's TTL, if cached. */
    const walk = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, inherited: number | undefined): boolean => {
      for (const s of selectionSet.selections) {
        if (s.kind === Kind.INLINE_FRAGMENT || s.kind === Kind.FRAGMENT_SPREAD) {
          const node = s.kind === Kind.INLINE_FRAGMENT ? s : fragments.get(s.name.value);
          if (!node) return false;
          const condition = node.typeCondition ? this.#schema.getType(node.typeCondition.name.value) : parent;
          if (!condition || !isCompositeType(condition) || !walk(node.selectionSet, condition, inherited)) return false;
          continue;
        }
        // __typename, __schema, __type: answered from the schema.
        if (s.name.value.startsWith('__')) continue;
        // On an interface, each implementation's own field runs: every one of them must allow it.
        const owners = isAbstractType(parent) ? this.#schema.getPossibleTypes(parent) : [parent];
        let own: number | undefined;
        let returns: GraphQLCompositeType | undefined;
        for (const owner of owners) {
          const field = owner.getFields()[s.name.value];
          const hint = field && this.#hints.get(field as GraphQLField<unknown, unknown>);
          if (!field || !hint || hint.kind === 'uncacheable') return false;
          if (hint.kind === 'inherit' && inherited === undefined) return false;
          const fieldTtl = hint.kind === 'cached' ? hint.ttlMs : inherited!;
          own = own === undefined ? fieldTtl : Math.min(own, fieldTtl);
          perCaller ||= hint.perCaller;
          touches.add(owner.name).add(`${owner.name}.${field.name}`);
          const named = getNamedType(field.type);
          if (isCompositeType(named)) returns = named;
        }
        if (own === undefined) return false;
        ttlMs = Math.min(ttlMs, own);
        if (s.selectionSet) {
          if (!returns) return false;
          touches.add(returns.name);
          if (!walk(s.selectionSet, returns, own)) return false;
        }
      }
      return true;
    };
    if (!walk(operation.selectionSet, root, undefined) || ttlMs === Infinity) return null;
    return { ttlMs, perCaller, touches };
  }
}

function hintOf(schema: GraphQLSchema, field: GraphQLField<unknown, unknown>, typeAuth: boolean, options: CachePolicyOptions): FieldHint {
  const auth = typeAuth || getDirective(schema, field, 'auth') !== undefined;
  const cache = getDirective(schema, field, 'cache')?.[0] as { ttlMs?: number } | undefined;
  for (const name of options.bindingDirectives) {
    const args = getDirective(schema, field, name)?.[0] as { connector?: unknown } | undefined;
    if (!args) continue;
    const ttlMs = cache?.ttlMs ?? (typeof args.connector === 'string' ? options.connectors[args.connector]?.cache?.ttlMs : undefined);
    if (ttlMs === undefined) return { kind: 'uncacheable' };
    const readsCaller = !BUILTIN_DIRECTIVES.has(name) || JSON.stringify(args).includes('context.');
    return { kind: 'cached', ttlMs, perCaller: auth || readsCaller };
  }
  // A code resolver's @cache is keyed by caller (src/bindings.ts), and its code may read the caller.
  if (cache?.ttlMs !== undefined) return { kind: 'cached', ttlMs: cache.ttlMs, perCaller: true };
  // @auth wraps the field in a resolver: a plain property and a code resolver then look alike.
  if (field.resolve || field.subscribe) return { kind: 'uncacheable' };
  return { kind: 'inherit', perCaller: false };
}

/** A bound field's connector; a code resolver's `@cache` is `field:Type.field` (src/bindings.ts keys). */
function ownersOf(schema: GraphQLSchema, field: GraphQLField<unknown, unknown>, coordinate: string, options: CachePolicyOptions): string[] {
  for (const name of options.bindingDirectives) {
    const connector = (getDirective(schema, field, name)?.[0] as { connector?: unknown } | undefined)?.connector;
    if (connector !== undefined) return typeof connector === 'string' ? [connector] : [];
  }
  return getDirective(schema, field, 'cache') ? [`field:${coordinate}`] : [];
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  return fragments;
}
