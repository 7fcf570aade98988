import { createHash } from 'node:crypto';
import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import {
  type ASTNode,
  defaultFieldResolver,
  getLocation,
  type GraphQLFieldConfig,
  GraphQLObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  Kind,
} from 'graphql';
import type { DirectiveUse, FieldBinding, HubContext } from '../connectors/runtime/contract.ts';
import type { CommonOptions } from '../connectors/runtime/options.ts';
import type { TypedDirective } from './connector-registry.ts';
import { bindSubscribe } from './events/subscribe-directive.ts';
import type { SchemaProblem } from './schema-problem.ts';

export interface BindingOptions {
  directives: TypedDirective[];
  /** The configured connectors: name → type. */
  connectors: Readonly<Record<string, string>>;
  /** `junction check`: let each directive's connector verify its uses (prepare SQL, …). */
  verify?: { configs: Readonly<Record<string, CommonOptions>>; baseDir: string } | undefined;
  /** `server.federation`: a binding directive on a `@key` type resolves that type's entities. */
  federation?: boolean;
}

/** Where `_entities` (@apollo/subgraph) looks for a type's reference resolver. */
interface EntityExtensions {
  apollo?: { subgraph?: { resolveReference?: (reference: object, ctx: HubContext, info: GraphQLResolveInfo) => unknown } };
}

/**
 * Gives every field bound with a connector directive (`@http`, `@graphql`, …) the resolver its
 * connector type builds, and wraps every other `@cache` field in a result cache. Under
 * federation, a connector directive on a `@key` type becomes the type's reference resolver, so
 * `_entities` goes through the same pipeline and per-request batching as fields do. Problems (an
 * unknown connector, a template naming a missing argument, a directive beside a code resolver)
 * are reported with the field's or type's SDL location, at `junction check` and at start-up alike.
 */
export function bindDirectives(schema: GraphQLSchema, options: BindingOptions): { schema: GraphQLSchema; problems: SchemaProblem[] } {
  const problems: SchemaProblem[] = [];
  const rootNames = {
    query: schema.getQueryType()?.name,
    mutation: schema.getMutationType()?.name,
    subscription: schema.getSubscriptionType()?.name,
  };
  const reporter = (node: ASTNode | null | undefined) => (message: string) => {
    const loc = node?.loc;
    const position = loc && getLocation(loc.source, loc.start);
    problems.push({ file: loc?.source.name ?? 'schema', line: position?.line, column: position?.column, message });
  };
  const usesOn = (node: Parameters<typeof getDirective>[1]) =>
    options.directives.flatMap((d) => (getDirective(schema, node, d.directive.name) ?? []).map((args) => ({ ...d, args })));
  /** The connector check, `bind()` and, at `junction check`, `verify()`; undefined after a problem. */
  const bindUse = (use: TypedDirective & { args: Record<string, unknown> }, directiveUse: DirectiveUse, at: (message: string) => void): FieldBinding | undefined => {
    const name = `@${use.directive.name}`;
    const { coordinate } = directiveUse;
    const connector = (use.args as { connector?: unknown }).connector;
    const connectorType = typeof connector === 'string' ? options.connectors[connector] : undefined;
    if (connectorType === undefined || !use.types.includes(connectorType)) {
      const known = Object.keys(options.connectors);
      at(
        connectorType === undefined
          ? `${coordinate} ${name}: no connector named "${String(connector)}" is configured (configured: ${known.join(', ') || 'none'})`
          : `${coordinate} ${name}: connector "${String(connector)}" is of type ${connectorType}, not ${use.types.join(' or ')}`,
      );
      return undefined;
    }
    const binding = use.directive.bind(directiveUse);
    const verified =
      !Array.isArray(binding) && options.verify && use.directive.verify
        ? use.directive.verify(directiveUse, options.verify.configs[connector as string]!, options.verify.baseDir)
        : [];
    if (Array.isArray(binding) || verified.length > 0) {
      for (const problem of Array.isArray(binding) ? binding : verified) at(`${coordinate} ${name}: ${problem}`);
      return undefined;
    }
    return binding;
  };

  const bound = mapSchema(schema, {
    [MapperKind.OBJECT_TYPE]: (type) => {
      const uses = usesOn(type);
      const [use] = uses;
      if (!use) return type;
      const at = reporter(type.astNode ?? type.extensionASTNodes[0]);
      const coordinate = type.name;
      const name = `@${use.directive.name}`;
      if (uses.length > 1) {
        at(`${coordinate} has ${uses.length} binding directives (${uses.map((u) => `@${u.directive.name}`).join(', ')}); a type takes one`);
        return type;
      }
      if (!options.federation) {
        at(`${coordinate} ${name}: a binding directive on a type resolves federation entities; set server.federation: true in the config`);
        return type;
      }
      const keys = keysOf(type);
      if (keys.length === 0) {
        at(`${coordinate} ${name}: a binding directive on a type resolves its federation entities, and ${coordinate} has no @key`);
        return type;
      }
      if (keys.every((k) => !k.resolvable)) {
        at(`${coordinate} ${name}: every @key of ${coordinate} has resolvable: false, so this subgraph resolves none of its entities; remove one or the other`);
        return type;
      }
      const extensions = type.extensions as EntityExtensions;
      if (extensions.apollo?.subgraph?.resolveReference) {
        at(`${coordinate} has both ${name} and a __resolveReference code resolver; remove one`);
        return type;
      }
      const binding = bindUse(use, { args: use.args, type, arguments: [], coordinate, operation: undefined, cache: undefined, entity: true }, at);
      if (!binding) return type;
      const resolve = binding.resolve;
      if (!resolve) {
        at(`${coordinate} ${name}: this directive cannot resolve entities`);
        return type;
      }
      // What the connector answered, with the representation on top: its key fields, and the
      // fields `@requires` asked the router for, which only the representation has.
      const resolveReference = async (representation: object, ctx: HubContext, info: GraphQLResolveInfo) => {
        const value = await resolve(representation, {}, ctx, info);
        return value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value, ...representation } : value;
      };
      return new GraphQLObjectType({
        ...type.toConfig(),
        extensions: { ...extensions, apollo: { ...extensions.apollo, subgraph: { ...extensions.apollo?.subgraph, resolveReference } } },
      });
    },
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      const field = fieldConfig as GraphQLFieldConfig<unknown, HubContext>;
      const coordinate = `${typeName}.${fieldName}`;
      const cacheArgs = getDirective(schema, field, 'cache')?.[0] as { ttlMs: number; staleIfOpen?: boolean | null } | undefined;
      const cache = cacheArgs && { ttlMs: cacheArgs.ttlMs, staleIfOpen: cacheArgs.staleIfOpen ?? undefined };
      const at = reporter(field.astNode);
      if (cache && cache.ttlMs <= 0) at(`${coordinate}: @cache(ttlMs: ${cache.ttlMs}) needs a positive ttlMs`);

      const uses = usesOn(field);
      const subscribeArgs = getDirective(schema, field, 'subscribe')?.[0];
      if (subscribeArgs) {
        // @subscribe is the hub's own: it names an event log source, not a connector of a type.
        const others = [...uses.map((u) => `@${u.directive.name}`), ...(field.resolve || field.subscribe ? ['a code resolver'] : [])];
        if (others.length > 0) {
          at(`${coordinate} has both @subscribe and ${others.join(' and ')}; remove one`);
          return field;
        }
        if (cache) at(`${coordinate}: @cache does not apply to a @subscribe field (each event is new)`);
        const binding = bindSubscribe({
          args: subscribeArgs,
          arguments: Object.entries(field.args ?? {}).map(([argName, arg]) => ({ name: argName, type: arg.type })),
          coordinate,
          operation: typeName === rootNames.subscription ? 'subscription' : typeName === rootNames.query ? 'query' : typeName === rootNames.mutation ? 'mutation' : undefined,
          connectors: options.connectors,
        });
        if (Array.isArray(binding)) {
          for (const problem of binding) at(`${coordinate} @subscribe: ${problem}`);
          return field;
        }
        return { ...field, ...binding };
      }
      if (uses.length > 1) {
        at(`${coordinate} has ${uses.length} binding directives (${uses.map((u) => `@${u.directive.name}`).join(', ')}); a field takes one`);
        return field;
      }
      const [use] = uses;
      if (!use) return cache ? { ...field, resolve: cachedResolver(field, coordinate, cache.ttlMs) } : field;
      const name = `@${use.directive.name}`;
      if (field.resolve || field.subscribe) {
        at(`${coordinate} has both ${name} and a code resolver; remove one`);
        return field;
      }
      const directiveUse: DirectiveUse = {
        args: use.args,
        type: field.type,
        arguments: Object.entries(field.args ?? {}).map(([argName, arg]) => ({ name: argName, type: arg.type })),
        coordinate,
        operation:
          typeName === rootNames.query ? 'query' : typeName === rootNames.mutation ? 'mutation' : typeName === rootNames.subscription ? 'subscription' : undefined,
        cache,
      };
      const binding = bindUse(use, directiveUse, at);
      if (!binding) return field;
      if (directiveUse.operation === 'subscription' ? !binding.subscribe : !binding.resolve) {
        at(`${coordinate} ${name}: this directive cannot bind a ${directiveUse.operation === 'subscription' ? 'Subscription' : 'Query or Mutation'} field`);
        return field;
      }
      return { ...field, ...binding };
    },
  });
  return { schema: bound, problems };
}

/** The `@key`s of a type (as `@key` or `@federation__key`), and whether each is resolvable. */
function keysOf(type: GraphQLObjectType): { resolvable: boolean }[] {
  return [type.astNode, ...type.extensionASTNodes].flatMap((node) =>
    (node?.directives ?? [])
      .filter((d) => d.name.value === 'key' || d.name.value === 'federation__key')
      .map((d) => {
        const resolvable = d.arguments?.find((a) => a.name.value === 'resolvable')?.value;
        return { resolvable: !(resolvable?.kind === Kind.BOOLEAN && !resolvable.value) };
      }),
  );
}

/**
 * `@cache(ttlMs)` on a field no connector binds: its resolver's result, by field, arguments,
 * parent (its `id`, else the whole object) and caller, in the hub's keyv store. The result must
 * be JSON.
 */
function cachedResolver(field: GraphQLFieldConfig<unknown, HubContext>, coordinate: string, ttlMs: number) {
  const resolve = field.resolve ?? defaultFieldResolver;
  return async (...params: Parameters<typeof resolve>) => {
    const [parent, args, ctx] = params;
    const parentKey = parent && typeof parent === 'object' && 'id' in parent ? (parent as { id: unknown }).id : parent;
    const key = `field:${coordinate}:${hash([args, parentKey ?? null, ctx.user?.id ?? null])}`;
    const hit = await ctx.cache.get(key);
    if (hit !== undefined) return hit;
    const value = await resolve(...params);
    await ctx.cache.set(key, value, ttlMs);
    return value;
  };
}

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 22);
}
