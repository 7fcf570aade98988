import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, type GraphQLFieldConfig, type GraphQLSchema } from 'graphql';
import type { HubContext, User } from '../connectors/runtime/contract.ts';
import { ErrorCode, HubError } from './errors.ts';
import { managementFields } from './hub-api.ts';

/**
 * Enforces `@auth(requires: [...])` on fields and object types, and the `admin` role on the
 * management API when incoming auth is configured. Guards both `resolve` and `subscribe`, so a
 * subscription is refused before it starts.
 */
export function applyAuthDirective(schema: GraphQLSchema, options: { authEnabled: boolean }): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (field, fieldName, typeName) => {
      const directives = [
        ...(getDirective(schema, field, 'auth') ?? []),
        ...(getDirective(schema, schema.getType(typeName)!, 'auth') ?? []),
      ];
      const roles = new Set<string>(directives.flatMap((d) => d.requires as string[]));
      if (options.authEnabled && managementFields.includes(`${typeName}.${fieldName}`)) roles.add('admin');
      if (directives.length === 0 && roles.size === 0) return field;
      return guardField(field, [...roles]);
    },
  });
}

function guardField(
  field: GraphQLFieldConfig<unknown, HubContext>,
  roles: string[],
): GraphQLFieldConfig<unknown, HubContext> {
  const resolve = field.resolve ?? defaultFieldResolver;
  const subscribe = field.subscribe;
  return {
    ...field,
    resolve: (source, args, ctx, info) => {
      assertRoles(ctx.user, roles);
      return resolve(source, args, ctx, info);
    },
    ...(subscribe && {
      subscribe: (source, args, ctx, info) => {
        assertRoles(ctx.user, roles);
        return subscribe(source, args, ctx, info);
      },
    }),
  };
}

function assertRoles(user: User | null, roles: string[]): void {
  if (!user) throw new HubError(ErrorCode.UNAUTHENTICATED, 'Authentication required');
  const missing = roles.filter((r) => !user.roles.includes(r));
  if (missing.length > 0) {
    throw new HubError(ErrorCode.FORBIDDEN, `Requires the role${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
}
