import { readFileSync } from 'node:fs';
import path from 'node:path';
import { mergeTypeDefs } from '@graphql-tools/merge';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { IResolvers } from '@graphql-tools/utils';
import fg from 'fast-glob';
import {
  type ASTNode,
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  isUnionType,
  parse,
  print,
  Source,
  validateSchema,
} from 'graphql';
// graphql-js keeps SDL validation internal, but it is the only way to get each error with its
// location; buildASTSchema would join them into one message. graphql is pinned to 16.x.
import { validateSDL } from 'graphql/validation/validate.js';
import type { CommonOptions } from '../connectors/runtime/options.ts';
import { applyAuthDirective } from './auth-directive.ts';
import { bindDirectives } from './bindings.ts';
import type { ConnectorRegistry } from './connector-registry.ts';
import { buildSubgraph, FEDERATION_DIRECTIVES } from './federation.ts';
import { hubResolvers, managementFields } from './hub-api.ts';
import { formatSchemaProblem, SchemaError, type SchemaProblem } from './schema-problem.ts';
import { importDefault } from './user-modules.ts';

export { formatSchemaProblem, SchemaError, type SchemaProblem } from './schema-problem.ts';

export interface SchemaOptions {
  /** Absolute globs of SDL files. */
  schema: string[];
  /** Absolute globs of resolver modules. */
  resolvers: string[];
  /** Paths in problems are shown relative to this folder. */
  baseDir: string;
  /** Whether incoming auth is configured: management fields then require `admin`. */
  authEnabled: boolean;
  /** The connector types whose directives the SDL may use. */
  registry: ConnectorRegistry;
  /**
   * The configured connectors, name → type, that directives may name. Without it, directives
   * are not bound: the schema's shape only (what codegen needs).
   */
  connectors?: Readonly<Record<string, string>>;
  /** `junction check`: the connectors' configs, so directives can be verified against them. */
  verify?: Readonly<Record<string, CommonOptions>>;
  /** `server.federation`: build an Apollo Federation v2 subgraph (src/federation.ts). */
  federation?: boolean;
}

const BUILTIN_SDL = new URL('./hub.graphql', import.meta.url);
const RESOLVER_EXTENSIONS = /\.(ts|mts|js|mjs)$/;
const NOT_RESOLVER_MODULES = /(\.d\.ts|\.test\.\w+|\.spec\.\w+)$/;
/** Keys of a resolver map that are not fields. */
const META_KEYS = new Set(['__resolveType', '__isTypeOf', '__resolveReference']);
/** The directives src/hub.graphql defines. */
const HUB_DIRECTIVES = ['auth', 'cache', 'invalidates', 'subscribe'];
const ROOT_TYPES = new Set(['Query', 'Mutation', 'Subscription']);
const FEDERATION_USE = new RegExp(`^Unknown directive "@(${FEDERATION_DIRECTIVES.join('|')})"\\.$`);

/**
 * Merges the built-in SDL with the user's SDL and code resolvers into one executable schema,
 * or throws a SchemaError listing every problem found with its file and location.
 */
export async function buildSchema(options: SchemaOptions): Promise<GraphQLSchema> {
  const problems: SchemaProblem[] = [];
  const show = (file: string) => path.relative(options.baseDir, file) || file;

  const documents: DocumentNode[] = [
    parseSdl(readFileSync(BUILTIN_SDL, 'utf8'), 'junction:hub.graphql', problems),
    ...options.registry.directives.map(({ directive }) => parseSdl(directive.sdl, `junction:@${directive.name}`, problems)),
  ];
  for (const file of await fg(options.schema, { absolute: true, onlyFiles: true })) {
    documents.push(parseSdl(readFileSync(file, 'utf8'), show(file), problems));
  }
  const modules = await loadResolverModules(options.resolvers, show, problems);
  if (problems.length > 0) throw new SchemaError(problems);

  problems.push(...fieldConflicts(documents));
  if (problems.length > 0) throw new SchemaError(problems);
  let merged: DocumentNode;
  try {
    merged = mergeTypeDefs(documents, { sort: false, throwOnConflict: true });
  } catch (error) {
    throw new SchemaError([{ file: 'schema', message: (error as Error).message }]);
  }
  const resolvers = [hubResolvers as IResolvers, ...modules.map((m) => m.resolvers)];
  let schema: GraphQLSchema;
  if (options.federation) {
    // @apollo/subgraph validates the SDL itself, knowing the federation directives.
    const builtin = documents.slice(0, 1 + options.registry.directives.length);
    const subgraph = await buildSubgraph({
      document: merged,
      resolvers,
      privateDirectives: [...HUB_DIRECTIVES, ...options.registry.directives.map((d) => d.directive.name)],
      privateFields: managementFields,
      privateTypes: new Set(builtin.flatMap((d) => d.definitions.flatMap((t) => ('name' in t && t.name && !ROOT_TYPES.has(t.name.value) ? [t.name.value] : [])))),
    });
    if ('errors' in subgraph) throw new SchemaError(subgraph.errors.map(problemAt));
    schema = subgraph.schema;
  } else {
    for (const error of validateSDL(merged)) problems.push(federationHint(problemAt(error)));
    if (problems.length > 0) throw new SchemaError(problems);
    schema = makeExecutableSchema({
      typeDefs: merged,
      resolvers,
      // Checked below with the module's file name, which this check cannot give.
      resolverValidationOptions: { requireResolversToMatchSchema: 'ignore' },
    });
  }
  for (const error of validateSchema(schema)) problems.push(problemAt(error));
  for (const m of modules) problems.push(...checkResolvers(schema, m.file, m.resolvers));
  if (problems.length > 0) throw new SchemaError(problems);

  if (!options.connectors) return applyAuthDirective(schema, { authEnabled: options.authEnabled });
  const bound = bindDirectives(schema, {
    directives: options.registry.directives,
    connectors: options.connectors,
    federation: options.federation ?? false,
    verify: options.verify && { configs: options.verify, baseDir: options.baseDir },
  });
  if (bound.problems.length > 0) throw new SchemaError(bound.problems);
  return applyAuthDirective(bound.schema, { authEnabled: options.authEnabled });
}

function parseSdl(text: string, name: string, problems: SchemaProblem[]): DocumentNode {
  try {
    return parse(new Source(text, name));
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    problems.push(problemAt(error));
    return { kind: 'Document' as DocumentNode['kind'], definitions: [] };
  }
}

/**
 * The same field declared with two types in two places. mergeTypeDefs would refuse too, but
 * without saying where; this names both places.
 */
function fieldConflicts(documents: DocumentNode[]): SchemaProblem[] {
  const seen = new Map<string, { type: string; node: ASTNode }>();
  const problems: SchemaProblem[] = [];
  for (const document of documents) {
    for (const definition of document.definitions) {
      if (!('fields' in definition) || !definition.fields) continue;
      for (const field of definition.fields) {
        const key = `${definition.name.value}.${field.name.value}`;
        const type = print(field.type);
        const first = seen.get(key);
        if (!first) seen.set(key, { type, node: field });
        else if (first.type !== type) {
          const where = problemAt(new GraphQLError('', { nodes: first.node }));
          problems.push({
            ...problemAt(new GraphQLError('', { nodes: field })),
            message: `${key} is declared as ${type} here but as ${first.type} at ${formatSchemaProblem(where).slice(0, -2)}`,
          });
        }
      }
    }
  }
  return problems;
}

/** `@key` and friends without `server.federation`: say what turns them on. */
function federationHint(problem: SchemaProblem): SchemaProblem {
  return FEDERATION_USE.test(problem.message)
    ? { ...problem, message: `${problem.message} Federation directives need server.federation: true in the config.` }
    : problem;
}

function problemAt(error: GraphQLError): SchemaProblem {
  const node = error.nodes?.[0];
  const source = error.source ?? node?.loc?.source;
  const location = error.locations?.[0];
  return {
    file: source?.name ?? 'schema',
    line: location?.line,
    column: location?.column,
    message: error.message,
  };
}

interface ResolverModule {
  file: string;
  resolvers: IResolvers;
}

async function loadResolverModules(
  globs: string[],
  show: (file: string) => string,
  problems: SchemaProblem[],
): Promise<ResolverModule[]> {
  const files = (await fg(globs, { absolute: true, onlyFiles: true }))
    .filter((f) => RESOLVER_EXTENSIONS.test(f) && !NOT_RESOLVER_MODULES.test(f))
    .sort();
  const modules: ResolverModule[] = [];
  for (const file of files) {
    try {
      const resolvers = await importDefault(file);
      if (!resolvers || typeof resolvers !== 'object') {
        problems.push({ file: show(file), message: 'expected a default export of a resolver map (an object)' });
        continue;
      }
      modules.push({ file: show(file), resolvers: resolvers as IResolvers });
    } catch (error) {
      problems.push({ file: show(file), message: `cannot load: ${(error as Error).message.split('\n')[0]}` });
    }
  }
  return modules;
}

/** Every type and field a resolver map names must exist in the schema. */
function checkResolvers(schema: GraphQLSchema, file: string, resolvers: IResolvers): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  for (const [typeName, typeResolvers] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    if (!type) {
      problems.push({ file, message: `resolver for type "${typeName}", which the schema does not define` });
      continue;
    }
    if (isScalarType(type) || isUnionType(type) || isInputObjectType(type) || !typeResolvers) continue;
    const known = isEnumType(type)
      ? new Set(type.getValues().map((v) => v.name))
      : isObjectType(type) || isInterfaceType(type)
        ? new Set(Object.keys(type.getFields()))
        : new Set<string>();
    for (const key of Object.keys(typeResolvers)) {
      if (META_KEYS.has(key) || known.has(key)) continue;
      problems.push({
        file,
        message: `resolver for ${typeName}.${key}, but type ${typeName} has no ${isEnumType(type) ? 'value' : 'field'} "${key}"`,
      });
    }
  }
  return problems;
}
