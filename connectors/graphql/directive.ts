import {
  type ASTNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLFieldResolver,
  type GraphQLInputType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  isAbstractType,
  isInputObjectType,
  isInputType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  OperationTypeNode,
  parseType,
  print,
  type SelectionNode,
  type SelectionSetNode,
  stripIgnoredCharacters,
  TypeInfo,
  typeFromAST,
  type VariableDefinitionNode,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import {
  type DirectiveUse,
  type FieldBinding,
  type FieldDirective,
  type FieldResolver,
  type HubContext,
  markStale,
  type Outcome,
  requestLoader,
  UpstreamError,
} from '../../src/index.ts';
import { type GraphqlConnector, type GraphqlResponse, type RemoteError, remoteMessages } from './connector.ts';

const SDL = `
"The remote root type @graphql delegates to."
enum GraphQLOperation { QUERY MUTATION }
"""
Delegates a field to a remote GraphQL API (a \`graphql\` connector): the field's arguments and the
client's sub-selection (fragments, variables, aliases) are forwarded to one remote root field.
On a federation entity type (one with @key), resolves its entities: every representation of a
request becomes one aliased call of \`field\` in a single remote operation, its key fields the
arguments (\`user(id: $id)\`).
"""
directive @graphql(
  connector: String!
  "The remote root field; default: this field's own name."
  field: String
  "QUERY: a field of the remote Query type (cacheable, deduplicated); MUTATION: of its Mutation type."
  operation: GraphQLOperation = QUERY
) on FIELD_DEFINITION | OBJECT
`;

interface GraphqlArgs {
  connector: string;
  field?: string | null;
  operation?: 'QUERY' | 'MUTATION' | null;
}

/** What one resolver call sends: the printed document and its variables. */
interface Delegation {
  query: string;
  variables: Record<string, unknown>;
}

/** What is delegated: the local type and the client's selections of it. */
interface Target {
  type: GraphQLOutputType;
  selections: readonly SelectionNode[];
}

/** One call of the remote root field: its arguments (values in JSON form) and its alias. */
interface RootCall {
  alias?: string;
  arguments: { name: string; type: GraphQLInputType; value: unknown }[];
}

type Resolver = FieldResolver;

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

export const graphqlDirective: FieldDirective = {
  name: 'graphql',
  sdl: SDL,
  bind(use: DirectiveUse): FieldBinding | string[] {
    const args = use.args as unknown as GraphqlArgs;
    if (use.entity) return bindEntity(use, args);
    const problems: string[] = [];
    const remoteField = args.field ?? use.coordinate.slice(use.coordinate.indexOf('.') + 1);
    if (!NAME.test(remoteField)) problems.push(`field "${remoteField}" is not a GraphQL field name`);
    const operation = args.operation ?? 'QUERY';
    if (operation === 'MUTATION' && use.coordinate.startsWith('Query.')) {
      problems.push('operation MUTATION on a Query field would change the remote API on a read; bind it to a Mutation field');
    }
    if (operation === 'MUTATION' && use.cache) problems.push('@cache has no effect with operation MUTATION: a mutation is never cached');
    if (problems.length > 0) return problems;

    const safe = operation === 'QUERY';
    const ttlMs = use.cache?.ttlMs;
    const staleIfOpen = use.cache?.staleIfOpen;
    const resolve: Resolver = async (_parent, fieldArgs, ctx, info) => {
      const target: Target = { type: info.returnType, selections: info.fieldNodes.flatMap((n) => n.selectionSet?.selections ?? []) };
      const fieldDef = info.parentType.getFields()[info.fieldName]!;
      const root: RootCall = {
        arguments: fieldDef.args.flatMap((arg) =>
          fieldArgs[arg.name] === undefined ? [] : [{ name: arg.name, type: arg.type, value: toInput(fieldArgs[arg.name], arg.type) }],
        ),
      };
      const call = delegation(info, target, [root], remoteField, safe ? OperationTypeNode.QUERY : OperationTypeNode.MUTATION);
      const connector = ctx.connectors[args.connector] as GraphqlConnector;
      let outcome: Outcome<GraphqlResponse>;
      if (safe) {
        // Identical delegations within a request are made once.
        const loader = requestLoader<Delegation, Outcome<GraphqlResponse>>(
          ctx,
          `graphql:${args.connector}:${ttlMs ?? ''}`,
          (calls) => Promise.all(calls.map((c) => connector.execute(c.query, c.variables, { safe, ttlMs, staleIfOpen }).catch((e: Error) => e))),
          (c) => JSON.stringify([c.query, c.variables]),
        );
        outcome = await loader.load(call);
      } else {
        outcome = await connector.execute(call.query, call.variables, { safe });
      }
      markStale(ctx, info, outcome.stale, args.connector);
      return answer(outcome.value, remoteField, target, info, args.connector, ctx);
    };
    return { resolve };
  },
};

/**
 * `type User @key(fields: "id") @graphql(connector: "accounts", field: "user")`: the entities of
 * one request, whatever their number, are one remote operation (`e0: user(id: $id_0) { … } e1: …`)
 * with the client's selection of the type; each alias's answer goes back to its representation.
 */
function bindEntity(use: DirectiveUse, args: GraphqlArgs): FieldBinding | string[] {
  const type = use.type as GraphQLObjectType;
  const problems: string[] = [];
  if (!args.field) problems.push(`on an entity type, field names the remote root field that finds one by its key (field: "${lowerFirst(type.name)}")`);
  else if (!NAME.test(args.field)) problems.push(`field "${args.field}" is not a GraphQL field name`);
  if (args.operation === 'MUTATION') problems.push('operation MUTATION cannot resolve entities: a lookup is a query');
  const fields = type.getFields();
  const keys: string[][] = [];
  for (const node of [type.astNode, ...type.extensionASTNodes]) {
    for (const directive of node?.directives ?? []) {
      if (directive.name.value !== 'key' && directive.name.value !== 'federation__key') continue;
      const value = directive.arguments?.find((a) => a.name.value === 'fields')?.value;
      const names = value?.kind === Kind.STRING ? value.value.trim().split(/[\s,]+/) : [];
      const bad = names.filter((n) => !NAME.test(n) || !fields[n] || !isInputType(fields[n]!.type));
      if (bad.length > 0 || names.length === 0) {
        problems.push(`@key(fields: ${JSON.stringify(value?.kind === Kind.STRING ? value.value : '')}): @graphql passes key fields as arguments, so a key must list scalar fields of ${type.name}`);
      } else keys.push(names);
    }
  }
  if (problems.length > 0) return problems;
  const remoteField = args.field!;
  const connectorName = args.connector;

  const resolve: Resolver = async (representation, _args, ctx, info) => {
    const rep = representation as Record<string, unknown>;
    const key = keys.find((k) => k.every((f) => rep[f] !== undefined && rep[f] !== null)) ?? keys[0]!;
    const target: Target = { type, selections: entitySelections(type, info) };
    const shape = stripIgnoredCharacters(target.selections.map((s) => print(s)).join(' '));
    const loader = requestLoader<Record<string, unknown>, Outcome<GraphqlResponse>>(
      ctx,
      `graphql-entity:${connectorName}:${type.name}:${key.join(',')}:${shape}`,
      async (reps) => {
        const roots: RootCall[] = reps.map((r, i) => ({
          alias: `e${i}`,
          // The representation's values are JSON already, as the remote wants them.
          arguments: key.map((name) => ({ name, type: fields[name]!.type as GraphQLInputType, value: r[name] })),
        }));
        const call = delegation(info, target, roots, remoteField, OperationTypeNode.QUERY);
        const connector = ctx.connectors[connectorName] as GraphqlConnector;
        const { value, stale } = await connector.execute(call.query, call.variables, { safe: true });
        const data = value.data as Record<string, unknown> | null | undefined;
        // Each alias's part, as if it had been asked alone; an error without a path goes to all.
        return roots.map(({ alias }) => ({
          value: {
            data: data ? { [remoteField]: data[alias!] ?? null } : data,
            errors: (value.errors ?? []).flatMap((e) =>
              !e.path || e.path.length === 0 ? [e] : e.path[0] === alias ? [{ ...e, path: [remoteField, ...e.path.slice(1)] }] : [],
            ),
          },
          stale,
        }));
      },
      (r) => JSON.stringify(key.map((name) => r[name])),
    );
    const outcome = await loader.load(rep);
    markStale(ctx, info, outcome.stale, connectorName);
    return answer(outcome.value, remoteField, target, info, connectorName, ctx);
  };
  return { resolve };
}

/** The client's selections of one entity type inside `_entities { … on User { … } }`, flattened. */
function entitySelections(type: GraphQLObjectType, info: GraphQLResolveInfo): SelectionNode[] {
  const applies = (condition: string | undefined) => {
    if (condition === undefined || condition === type.name) return true;
    const named = info.schema.getType(condition);
    return named !== undefined && isAbstractType(named) && info.schema.isSubType(named, type);
  };
  const out: SelectionNode[] = [];
  const walk = (selections: readonly SelectionNode[]) => {
    for (const selection of selections) {
      if (selection.kind === Kind.FIELD) out.push(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (applies(selection.typeCondition?.name.value)) walk(selection.selectionSet.selections);
      } else {
        const fragment = info.fragments[selection.name.value];
        if (fragment && applies(fragment.typeCondition.name.value)) walk(fragment.selectionSet.selections);
      }
    }
  };
  walk(info.fieldNodes.flatMap((n) => n.selectionSet?.selections ?? []));
  return out;
}

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

// ---- the outgoing document ------------------------------------------------------------------

const TYPENAME: FieldNode = { kind: Kind.FIELD, name: { kind: Kind.NAME, value: '__typename' } };

/**
 * `query($id: ID!, $size: Int) { user(id: $id) { name avatar(size: $size) ...F } } fragment F …`:
 * the field's arguments become variables typed like the local field's arguments; the client's
 * sub-selection goes as it is (aliases included), with the fragments and variables it uses, and
 * `__typename` added where the local type is abstract (the hub needs it to pick the concrete type).
 * Several root calls (entities) each get an alias and their own variables (`$id_0`, `$id_1`, …).
 */
function delegation(
  info: GraphQLResolveInfo,
  target: Target,
  roots: readonly RootCall[],
  remoteField: string,
  operation: OperationTypeNode,
): Delegation {
  const { selections } = target;
  const selectionSet: SelectionSetNode | undefined =
    selections.length > 0 ? withTypenames({ kind: Kind.SELECTION_SET, selections: [...selections] }, new TypeInfo(info.schema, target.type)) : undefined;

  // The fragments the sub-selection spreads, transitively, and the client's variables they all use.
  const fragments = new Map<string, FragmentDefinitionNode>();
  const used = new Set<string>();
  const pending: ASTNode[] = selectionSet ? [selectionSet] : [];
  for (let node = pending.pop(); node; node = pending.pop()) {
    visit(node, {
      Variable: (v) => void used.add(v.name.value),
      FragmentSpread: (spread) => {
        const name = spread.name.value;
        const definition = info.fragments[name];
        if (definition && !fragments.has(name)) {
          const typed = withTypenames(definition, new TypeInfo(info.schema));
          fragments.set(name, typed);
          pending.push(typed);
        }
      },
    });
  }

  const variables: Record<string, unknown> = {};
  const definitions: VariableDefinitionNode[] = [];
  for (const definition of info.operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    if (!used.has(name)) continue;
    definitions.push({ ...definition, defaultValue: undefined, directives: [] });
    const type = typeFromAST(info.schema, definition.type);
    if (name in info.variableValues && type) variables[name] = toInput(info.variableValues[name], type as GraphQLInputType);
  }
  const rootFields = roots.map((root, i): FieldNode => {
    const argumentNodes = [];
    for (const arg of root.arguments) {
      const base = roots.length === 1 ? arg.name : `${arg.name}_${i}`;
      let name = base;
      for (let n = 2; used.has(name); n++) name = `${base}_${n}`;
      used.add(name);
      const variable = { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: name } } as const;
      definitions.push({ kind: Kind.VARIABLE_DEFINITION, variable, type: parseType(String(arg.type)) });
      argumentNodes.push({ kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: arg.name }, value: variable } as const);
      variables[name] = arg.value;
    }
    return {
      kind: Kind.FIELD,
      ...(root.alias && { alias: { kind: Kind.NAME, value: root.alias } }),
      name: { kind: Kind.NAME, value: remoteField },
      arguments: argumentNodes,
      selectionSet,
    };
  });
  const document: DocumentNode = {
    kind: Kind.DOCUMENT,
    definitions: [
      {
        kind: Kind.OPERATION_DEFINITION,
        operation,
        variableDefinitions: definitions,
        selectionSet: { kind: Kind.SELECTION_SET, selections: rootFields },
      } satisfies OperationDefinitionNode,
      ...fragments.values(),
    ],
  };
  return { query: stripIgnoredCharacters(print(document)), variables };
}

function withTypenames<T extends SelectionSetNode | FragmentDefinitionNode>(node: T, typeInfo: TypeInfo): T {
  return visit(
    node,
    visitWithTypeInfo(typeInfo, {
      SelectionSet(set) {
        const parent = typeInfo.getParentType();
        if (!parent || !isAbstractType(parent)) return undefined;
        if (set.selections.some((s) => s.kind === Kind.FIELD && !s.alias && s.name.value === '__typename')) return undefined;
        return { ...set, selections: [TYPENAME, ...set.selections] };
      },
    }),
  );
}

/** A coerced (internal) input value back to its JSON form: enums by name, custom scalars serialized. */
function toInput(value: unknown, type: GraphQLInputType): unknown {
  if (value === null || value === undefined) return null;
  if (isNonNullType(type)) return toInput(value, type.ofType);
  if (isListType(type)) return Array.isArray(value) ? value.map((v) => toInput(v, type.ofType)) : toInput(value, type.ofType);
  if (isInputObjectType(type)) {
    const fields = type.getFields();
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      const field = fields[key];
      if (field && v !== undefined) out[key] = toInput(v, field.type);
    }
    return out;
  }
  return isLeafType(type) ? type.serialize(value) : value;
}

// ---- the answer -----------------------------------------------------------------------------

/** Remote errors by the remote response path below the delegated field. */
interface ErrorTree {
  here: RemoteError[];
  below: Map<string, ErrorTree>;
}

/**
 * The remote's answer as the hub's resolvers read it. The remote answered under the client's
 * aliases; graphql-js's default resolver reads `parent[fieldName]`, so each object is re-keyed
 * by field name. A field selected under several aliases (`small: avatar(size: 1) big: avatar(size: 2)`)
 * becomes a function of the alias, which the default resolver calls. A remote error goes where
 * the remote put it: the null it left becomes an UpstreamError, so that field alone fails and
 * everything else the remote answered is kept.
 */
function answer(response: GraphqlResponse, remoteField: string, target: Target, info: GraphQLResolveInfo, connector: string, ctx: HubContext): unknown {
  const tree: ErrorTree = { here: [], below: new Map() };
  const unplaced: RemoteError[] = [];
  for (const error of response.errors ?? []) {
    const [first, ...rest] = error.path ?? [];
    if (first !== remoteField) {
      unplaced.push(error);
      continue;
    }
    let node = tree;
    for (const segment of rest) {
      let next = node.below.get(String(segment));
      if (!next) node.below.set(String(segment), (next = { here: [], below: new Map() }));
      node = next;
    }
    node.here.push(error);
  }

  const data = response.data as Record<string, unknown> | null | undefined;
  const value = data?.[remoteField] ?? null;
  if (value === null) {
    const errors = [...unplaced, ...all(tree)];
    if (errors.length > 0) throw upstream(connector, errors);
    return null;
  }
  if (unplaced.length > 0) {
    // A remote error outside the delegated field, while the field has data: nowhere to show it.
    ctx.logger.warn({ connector, remoteErrors: unplaced.map((e) => e.message) }, 'remote GraphQL errors outside the delegated field');
  }
  return rekey(value, target.type, target.selections, tree, { schema: info.schema, fragments: info.fragments, connector });
}

interface RekeyScope {
  schema: GraphQLSchema;
  fragments: Record<string, FragmentDefinitionNode>;
  connector: string;
}

function rekey(value: unknown, type: GraphQLOutputType, selections: readonly SelectionNode[], errors: ErrorTree | undefined, scope: RekeyScope): unknown {
  if (value === null || value === undefined) {
    const below = errors ? all(errors) : [];
    return below.length > 0 ? upstream(scope.connector, below) : null;
  }
  if (isNonNullType(type)) return rekey(value, type.ofType, selections, errors, scope);
  if (isListType(type)) {
    if (!Array.isArray(value)) return value;
    return value.map((item, i) => rekey(item, type.ofType, selections, errors?.below.get(String(i)), scope));
  }
  if (isLeafType(type) || typeof value !== 'object') return value;
  const remote = value as Record<string, unknown>;
  const concrete = isAbstractType(type) ? scope.schema.getType(String(remote.__typename)) : type;
  if (!isObjectType(concrete)) return value;

  const definitions = concrete.getFields();
  const byName = new Map<string, Map<string, unknown>>();
  for (const [key, field] of collectFields(concrete, selections, scope)) {
    if (!(key in remote) || field.name === '__typename') continue;
    const definition = definitions[field.name];
    const v = definition ? rekey(remote[key], definition.type, field.selections, errors?.below.get(key), scope) : remote[key];
    let keys = byName.get(field.name);
    if (!keys) byName.set(field.name, (keys = new Map()));
    keys.set(key, v);
  }
  const out: Record<string, unknown> = {};
  if (typeof remote.__typename === 'string') out.__typename = remote.__typename;
  for (const [name, keys] of byName) {
    out[name] = keys.size === 1 ? keys.values().next().value : (_args: unknown, _ctx: unknown, info: GraphQLResolveInfo) => keys.get(String(info.path.key)) ?? null;
  }
  return out;
}

/** Response key → field name and merged sub-selections, for one concrete type (like graphql-js's collectFields). */
function collectFields(
  type: GraphQLObjectType,
  selections: readonly SelectionNode[],
  scope: RekeyScope,
  fields = new Map<string, { name: string; selections: SelectionNode[] }>(),
): Map<string, { name: string; selections: SelectionNode[] }> {
  const applies = (condition: string | undefined) => {
    if (condition === undefined || condition === type.name) return true;
    const named = scope.schema.getType(condition);
    return named !== undefined && isAbstractType(named) && scope.schema.isSubType(named, type);
  };
  for (const selection of selections) {
    switch (selection.kind) {
      case Kind.FIELD: {
        const key = selection.alias?.value ?? selection.name.value;
        const sub = selection.selectionSet?.selections ?? [];
        const field = fields.get(key);
        if (field) field.selections.push(...sub);
        else fields.set(key, { name: selection.name.value, selections: [...sub] });
        break;
      }
      case Kind.INLINE_FRAGMENT:
        if (applies(selection.typeCondition?.name.value)) collectFields(type, selection.selectionSet.selections, scope, fields);
        break;
      case Kind.FRAGMENT_SPREAD: {
        const fragment = scope.fragments[selection.name.value];
        if (fragment && applies(fragment.typeCondition.name.value)) collectFields(type, fragment.selectionSet.selections, scope, fields);
        break;
      }
    }
  }
  return fields;
}

/** The remote's messages, joined; each shortened. */
function all(tree: ErrorTree): RemoteError[] {
  return [...tree.here, ...[...tree.below.values()].flatMap(all)];
}

/** The remote's errors for one field: its message(s), the remote path and the remote's code. */
function upstream(connector: string, errors: RemoteError[]): UpstreamError {
  const [first] = errors;
  const code = first?.extensions?.code;
  return new UpstreamError(connector, remoteMessages(errors), {
    transient: false,
    details: {
      ...(first?.path && { remotePath: first.path }),
      ...(typeof code === 'string' && { remoteCode: code }),
    },
  });
}
