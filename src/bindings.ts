import { createHash } from 'node:crypto';
import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, getLocation, type GraphQLFieldConfig, type GraphQLSchema } from 'graphql';
import type { DirectiveUse, HubContext } from '../connectors/runtime/contract.ts';
import type { CommonOptions } from '../connectors/runtime/options.ts';
import type { TypedDirective } from './connector-registry.ts';
import type { SchemaProblem } from './schema-problem.ts';

export interface BindingOptions {
  directives: TypedDirective[];
  /** The configured connectors: name → type. */
  connectors: Readonly<Record<string, string>>;
  /** `junction check`: let each directive's connector verify its uses (prepare SQL, …). */
  verify?: { configs: Readonly<Record<string, CommonOptions>>; baseDir: string } | undefined;
}

/**
 * Gives every field bound with a connector directive (`@http`, `@graphql`, …) the resolver its
 * connector type builds, and wraps every other `@cache` field in a result cache. Problems (an
 * unknown connector, a template naming a missing argument, a directive beside a code resolver)
 * are reported with the field's SDL location, at `junction check` and at start-up alike.
 */
export function bindDirectives(schema: GraphQLSchema, options: BindingOptions): { schema: GraphQLSchema; problems: SchemaProblem[] } {
  const problems: SchemaProblem[] = [];
  const rootNames = {
    query: schema.getQueryType()?.name,
    mutation: schema.getMutationType()?.name,
    subscription: schema.getSubscriptionType()?.name,
  };
  const bound = mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      const field = fieldConfig as GraphQLFieldConfig<unknown, HubContext>;
      const coordinate = `${typeName}.${fieldName}`;
      const cacheArgs = getDirective(schema, field, 'cache')?.[0] as { ttlMs: number; staleIfOpen?: boolean | null } | undefined;
      const cache = cacheArgs && { ttlMs: cacheArgs.ttlMs, staleIfOpen: cacheArgs.staleIfOpen ?? undefined };
      const at = (message: string) => {
        const loc = field.astNode?.loc;
        const position = loc && getLocation(loc.source, loc.start);
        problems.push({ file: loc?.source.name ?? 'schema', line: position?.line, column: position?.column, message });
      };
      if (cache && cache.ttlMs <= 0) at(`${coordinate}: @cache(ttlMs: ${cache.ttlMs}) needs a positive ttlMs`);

      const uses = options.directives.flatMap((d) => (getDirective(schema, field, d.directive.name) ?? []).map((args) => ({ ...d, args })));
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
      const connector = (use.args as { connector?: unknown }).connector;
      const connectorType = typeof connector === 'string' ? options.connectors[connector] : undefined;
      if (connectorType !== use.type) {
        const known = Object.keys(options.connectors);
        at(
          connectorType === undefined
            ? `${coordinate} ${name}: no connector named "${String(connector)}" is configured (configured: ${known.join(', ') || 'none'})`
            : `${coordinate} ${name}: connector "${String(connector)}" is of type ${connectorType}, not ${use.type}`,
        );
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
      const binding = use.directive.bind(directiveUse);
      const verified =
        !Array.isArray(binding) && options.verify && use.directive.verify
          ? use.directive.verify(directiveUse, options.verify.configs[connector as string]!, options.verify.baseDir)
          : [];
      if (Array.isArray(binding) || verified.length > 0) {
        for (const problem of Array.isArray(binding) ? binding : verified) at(`${coordinate} ${name}: ${problem}`);
        return field;
      }
      if (directiveUse.operation === 'subscription' ? !binding.subscribe : !binding.resolve) {
        at(`${coordinate} ${name}: this directive cannot bind a ${directiveUse.operation === 'subscription' ? 'Subscription' : 'Query or Mutation'} field`);
        return field;
      }
      return { ...field, ...binding };
    },
  });
  return { schema: bound, problems };
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
