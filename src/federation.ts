// `server.federation: true`: the merged SDL and resolvers become an Apollo Federation v2
// subgraph, and `_service { sdl }` answers the subgraph's public SDL. @apollo/subgraph (and the
// federation internals under it, ~100 ms to load) is imported only when federation is on.
import { mergeResolvers } from '@graphql-tools/merge';
import type { IResolvers } from '@graphql-tools/utils';
import {
  type ConstDirectiveNode,
  type DefinitionNode,
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  graphqlSync,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  Kind,
  type Location,
  parse,
  print,
  visit,
} from 'graphql';

/**
 * Linked when the SDL links no federation spec itself: v2.3 is the first with every directive
 * listed, and what Apollo Router, Gateway and Hive Gateway have all understood for years.
 */
export const FEDERATION_LINK =
  'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable", "@external", "@requires", "@provides", "@inaccessible", "@tag", "@override", "@interfaceObject", "@composeDirective", "@extends"])';

/** The directives federation defines, by the names the default link imports them under. */
export const FEDERATION_DIRECTIVES = [
  'link', 'key', 'shareable', 'external', 'requires', 'provides', 'inaccessible', 'tag', 'override', 'interfaceObject',
  'composeDirective', 'extends', 'authenticated', 'requiresScopes', 'policy', 'context', 'fromContext', 'cost', 'listSize',
];

export interface SubgraphParts {
  /** The merged SDL: built-in, connector directives and the user's. */
  document: DocumentNode;
  resolvers: IResolvers[];
  /** Directives the hub itself interprets: hidden from `_service { sdl }`, definitions and uses. */
  privateDirectives: readonly string[];
  /** Fields of the hub's own API (`Query.hub`, …): served by the hub, hidden from the subgraph SDL. */
  privateFields: readonly string[];
  /** Types the hub defines (its API's, its directives' inputs), root types aside: hidden unless something public leads to them. */
  privateTypes: ReadonlySet<string>;
}

/**
 * An executable subgraph schema (`_service`, `_entities`, `_Any`, the federation directives),
 * or the problems `@apollo/subgraph` found, each with its SDL location. Code resolvers may give
 * `__resolveReference`; it lands where `_entities` looks for it
 * (`extensions.apollo.subgraph.resolveReference`).
 */
export async function buildSubgraph(parts: SubgraphParts): Promise<{ schema: GraphQLSchema } | { errors: GraphQLError[] }> {
  const { buildSubgraphSchema } = await import('@apollo/subgraph');
  const document = linksFederation(parts.document)
    ? parts.document
    : { ...parts.document, definitions: [...parse(FEDERATION_LINK).definitions, ...parts.document.definitions] };
  let schema: GraphQLSchema;
  try {
    schema = buildSubgraphSchema([{ typeDefs: document, resolvers: mergeResolvers(parts.resolvers) as never }]);
  } catch (error) {
    const causes = (error as { causes?: unknown }).causes;
    if (Array.isArray(causes) && causes.every((c) => c instanceof GraphQLError)) return { errors: causes };
    if (error instanceof GraphQLError) return { errors: [error] };
    throw error;
  }
  restoreLocations(schema, document);
  // `_service` answers the SDL @apollo/subgraph printed, bindings included: answer the public one.
  const service = schema.getQueryType()!.getFields()._service!;
  const sdl = publicSdl(subgraphSdl(schema), parts);
  service.resolve = () => ({ sdl });
  return { schema };
}

/** What `_service { sdl }` answers: the subgraph SDL a router composes. */
export function subgraphSdl(schema: GraphQLSchema): string {
  const result = graphqlSync({ schema, source: '{ _service { sdl } }' });
  const sdl = (result.data as { _service?: { sdl?: unknown } } | null | undefined)?._service?.sdl;
  if (typeof sdl !== 'string') throw new Error(`the schema answers no _service { sdl }: ${result.errors?.[0]?.message ?? 'not a subgraph'}`);
  return sdl;
}

/**
 * @apollo/subgraph rebuilds the schema from SDL it printed, so its AST nodes lost their places in
 * the user's files; problems found later (bindings) are reported there, so they get them back.
 */
function restoreLocations(schema: GraphQLSchema, document: DocumentNode): void {
  const places = new Map<string, Location>();
  for (const definition of document.definitions) {
    if (!('name' in definition) || !definition.name || !definition.loc) continue;
    const type = definition.name.value;
    if (!places.has(type)) places.set(type, definition.loc);
    for (const field of 'fields' in definition ? (definition.fields ?? []) : []) {
      if (field.loc && !places.has(`${type}.${field.name.value}`)) places.set(`${type}.${field.name.value}`, field.loc);
    }
  }
  const restore = (node: { loc?: Location | undefined } | null | undefined, coordinate: string) => {
    const loc = places.get(coordinate);
    if (node && !node.loc && loc) node.loc = loc;
  };
  for (const type of Object.values(schema.getTypeMap())) {
    restore(type.astNode as { loc?: Location } | null | undefined, type.name);
    if (!isObjectType(type) && !isInterfaceType(type) && !isInputObjectType(type)) continue;
    for (const field of Object.values(type.getFields())) restore(field.astNode as { loc?: Location } | null | undefined, `${type.name}.${field.name}`);
  }
}

function linksFederation(document: DocumentNode): boolean {
  return document.definitions.some(
    (d) =>
      (d.kind === Kind.SCHEMA_DEFINITION || d.kind === Kind.SCHEMA_EXTENSION) &&
      (d.directives ?? []).some((directive) => directive.name.value === 'link' && linkUrl(directive)?.includes('specs.apollo.dev/federation/')),
  );
}

function linkUrl(directive: ConstDirectiveNode): string | undefined {
  const url = directive.arguments?.find((a) => a.name.value === 'url')?.value;
  return url?.kind === Kind.STRING ? url.value : undefined;
}

/**
 * The subgraph SDL without what is the hub's own business: binding directives (connector names,
 * paths, SQL, templates), `@auth` and `@cache`, the management API, and the types only those used.
 */
function publicSdl(sdl: string, parts: SubgraphParts): string {
  const hiddenDirectives = new Set(parts.privateDirectives);
  const hiddenFields = new Map<string, Set<string>>();
  for (const coordinate of parts.privateFields) {
    const [type, field] = coordinate.split('.') as [string, string];
    hiddenFields.set(type, (hiddenFields.get(type) ?? new Set()).add(field));
  }
  let document = visit(parse(sdl, { noLocation: true }), {
    Directive: (node) => (hiddenDirectives.has(node.name.value) ? null : undefined),
    DirectiveDefinition: (node) => (hiddenDirectives.has(node.name.value) ? null : undefined),
    ObjectTypeDefinition: (node) => {
      const hidden = hiddenFields.get(node.name.value);
      return hidden ? { ...node, fields: node.fields?.filter((f) => !hidden.has(f.name.value)) } : undefined;
    },
  });
  // Root types left without fields go, then every private type nothing public leads to.
  const emptyRoots = new Set(
    document.definitions.flatMap((d) => (d.kind === Kind.OBJECT_TYPE_DEFINITION && (d.fields ?? []).length === 0 ? [d.name.value] : [])),
  );
  document = visit(document, {
    ObjectTypeDefinition: (node) => (emptyRoots.has(node.name.value) ? null : undefined),
    OperationTypeDefinition: (node) => (emptyRoots.has(node.type.name.value) ? null : undefined),
  });
  const reached = reachableTypes(document, parts.privateTypes);
  return print({ ...document, definitions: document.definitions.filter((d) => !('name' in d && d.name && parts.privateTypes.has(d.name.value) && !reached.has(d.name.value))) });
}

/** Type names reachable from every definition that is not a private type. */
function reachableTypes(document: DocumentNode, privateTypes: ReadonlySet<string>): Set<string> {
  const byName = new Map(document.definitions.flatMap((d) => ('name' in d && d.name ? [[d.name.value, d] as const] : [])));
  const reached = new Set<string>();
  const pending: DefinitionNode[] = document.definitions.filter((d) => !('name' in d && d.name && privateTypes.has(d.name.value)));
  for (let definition = pending.pop(); definition; definition = pending.pop()) {
    visit(definition, {
      NamedType: (node) => {
        const name = node.name.value;
        if (reached.has(name)) return;
        reached.add(name);
        const next = byName.get(name);
        if (next && privateTypes.has(name)) pending.push(next);
      },
    });
  }
  return reached;
}
