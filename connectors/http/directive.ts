import type DataLoader from 'dataloader';
import { getNullableType, isListType } from 'graphql';
import {
  type DirectiveUse,
  type FieldBinding,
  type FieldDirective,
  type FieldResolver,
  type HubContext,
  markStale,
  type Outcome,
  requestLoader,
  Template,
  type TemplateScope,
  UpstreamError,
} from '../../src/index.ts';
import type { HttpConnector, HttpMethod } from './connector.ts';

const SDL = `
"HTTP methods @http may use."
enum HttpMethod { GET POST PUT PATCH DELETE }
"A key and a template value, for @http's query and headers."
input KeyValue { key: String!, value: String! }
"""
Binds a field to a call of an \`http\` connector. Templates: {args.x}, {parent.x}, {context.user.x};
values are URL-encoded in the path and the query, and the path never leaves the connector's baseUrl.
On a federation entity type (one with @key), resolves its entities: {parent.x} reads the representation.
"""
directive @http(
  connector: String!
  method: HttpMethod = GET
  path: String!
  query: [KeyValue!]
  headers: [KeyValue!]
  "A JSON template: \\"{args.input}\\" sends the argument as the body."
  body: String
  "Merge this field's calls within a request into one, repeating the query key; match items by this field."
  batchKey: String
  "A dot path into the response body: \\"data.items\\"."
  select: String
) on FIELD_DEFINITION | OBJECT
`;

interface HttpArgs {
  connector: string;
  method: HttpMethod;
  path: string;
  query?: { key: string; value: string }[] | null;
  headers?: { key: string; value: string }[] | null;
  body?: string | null;
  batchKey?: string | null;
  select?: string | null;
}

type Resolver = FieldResolver;

export const httpDirective: FieldDirective = {
  name: 'http',
  sdl: SDL,
  bind(use: DirectiveUse): FieldBinding | string[] {
    const args = use.args as unknown as HttpArgs;
    const problems: string[] = [];
    if (!args.path.startsWith('/')) problems.push(`path "${args.path}" must start with /`);

    const path = new Template(args.path);
    const query = (args.query ?? []).map((kv) => [kv.key, new Template(kv.value)] as const);
    const headers = (args.headers ?? []).map((kv) => [kv.key, new Template(kv.value)] as const);
    const body = args.body ? new Template(args.body) : undefined;
    const argumentNames = use.arguments.map((a) => a.name);
    for (const template of [path, ...query.map(([, t]) => t), ...headers.map(([, t]) => t), ...(body ? [body] : [])]) {
      problems.push(...template.problems(argumentNames));
    }
    if (body && !body.whole) {
      try {
        JSON.parse(body.render(emptyScope, () => 'null'));
      } catch {
        problems.push(`body ${JSON.stringify(args.body)} is not JSON once its placeholders are filled`);
      }
    }
    const list = isListType(getNullableType(use.type));
    let batchIndex = -1;
    if (args.batchKey) {
      if (args.method !== 'GET') problems.push('batchKey batches GET calls only');
      const varying = query.flatMap(([, t], i) => (t.parts.some((p) => typeof p !== 'string') ? [i] : []));
      if (varying.length !== 1) {
        problems.push(`batchKey needs exactly one query entry with a placeholder, the key to repeat (found ${varying.length})`);
      }
      if (path.parts.some((p) => typeof p !== 'string')) problems.push('batchKey needs a path without placeholders');
      batchIndex = varying[0] ?? -1;
    }
    if (problems.length > 0) return problems;

    const select = args.select ? args.select.split('.') : [];
    const coordinate = use.coordinate;
    const ttlMs = use.cache?.ttlMs;
    const staleIfOpen = use.cache?.staleIfOpen;
    const render = (scope: TemplateScope) => ({
      method: args.method,
      path: path.render(scope, (v) => encodeURIComponent(text(v))),
      query: query.map(([key, t]) => [key, t.render(scope, text)] as [string, string]),
      headers: Object.fromEntries(headers.map(([key, t]) => [key, t.render(scope, text)])),
      body: body ? (body.whole ? JSON.stringify(body.value(scope, body.whole) ?? null) : body.render(scope, (v) => JSON.stringify(v ?? null))) : undefined,
      ttlMs,
      staleIfOpen,
    });

    if (args.batchKey) {
      const batchKey = args.batchKey;
      const [key, keyTemplate] = query[batchIndex]!;
      // Everything but the repeated key is usually fixed: then every parent's call is the same
      // one, rendered once here instead of once per parent (a list of 100 posts, 100 renders).
      const isStatic = (t: Template) => t.parts.every((p) => typeof p === 'string');
      const fixed = query.every(([, t], i) => i === batchIndex || isStatic(t)) && headers.every(([, t]) => isStatic(t)) && (!body || isStatic(body))
        ? render(emptyScope)
        : undefined;
      const fixedRest = fixed?.query.filter((_, i) => i !== batchIndex);
      const fixedGroup = fixed && `${args.connector}|${coordinate}|${JSON.stringify([fixed.path, fixedRest, fixed.headers])}`;
      const resolve: Resolver = async (parent, fieldArgs, ctx, info) => {
        const scope = scopeOf(parent, fieldArgs, ctx);
        const value = keyTemplate.render(scope, text);
        let call = fixed;
        let rest = fixedRest;
        let group = fixedGroup;
        if (!call || !rest || !group) {
          call = render(scope);
          rest = call.query.filter((_, i) => i !== batchIndex);
          group = `${args.connector}|${coordinate}|${JSON.stringify([call.path, rest, call.headers])}`;
        }
        let loader = ctx.loaders.get(group) as DataLoader<string, Outcome<unknown>> | undefined;
        if (!loader) {
          const connector = connectorOf(ctx, args.connector);
          const batch = { call, rest };
          loader = requestLoader<string, Outcome<unknown>>(ctx, group, async (keys) => {
            connector.recordBatch(coordinate, keys.length);
            const outcome = await connector.send({ ...batch.call, query: [...batch.rest, ...keys.map((k) => [key, k] as [string, string])] });
            const items = selectPath(outcome.value, select);
            if (!Array.isArray(items)) {
              throw new UpstreamError(args.connector, `${coordinate}: a batchKey call must answer a list${select.length ? ` at "${args.select}"` : ''}, got ${items === null ? 'null' : typeof items}`, {
                transient: false,
              });
            }
            // Each item goes to the parents whose key equals its batchKey field, in answer order.
            const byKey = new Map<string, unknown[]>();
            for (const item of items) {
              if (item == null) continue;
              const itemKey = text((item as Record<string, unknown>)[batchKey]);
              const matches = byKey.get(itemKey);
              if (matches) matches.push(item);
              else byKey.set(itemKey, [item]);
            }
            const { stale } = outcome;
            return keys.map((k) => ({ value: list ? (byKey.get(k) ?? []) : (byKey.get(k)?.[0] ?? null), stale }));
          });
        }
        const outcome = await loader.load(value);
        // Every parent's own path: a batch served stale marks each field it answered.
        markStale(ctx, info, outcome.stale, args.connector);
        return outcome.value;
      };
      return { resolve };
    }

    const resolve: Resolver = async (parent, fieldArgs, ctx, info) => {
      const call = render(scopeOf(parent, fieldArgs, ctx));
      const connector = connectorOf(ctx, args.connector);
      if (call.method !== 'GET') {
        const outcome = await connector.send(call);
        return selectPath(outcome.value, select);
      }
      // Identical calls within a request are made once.
      const loader = requestLoader<typeof call, unknown>(
        ctx,
        `http:${args.connector}`,
        (calls) => Promise.all(calls.map((c) => connector.send(c).then((o) => o, (e: Error) => e))),
        (c) => JSON.stringify([c.path, c.query, c.headers, c.ttlMs]),
      );
      const outcome = (await loader.load(call)) as Outcome<unknown>;
      markStale(ctx, info, outcome.stale, args.connector);
      return selectPath(outcome.value, select);
    };
    return { resolve };
  },
};

const emptyScope: TemplateScope = { args: {}, parent: {}, context: { user: null } };

function scopeOf(parent: unknown, args: Record<string, unknown>, ctx: HubContext): TemplateScope {
  return { args, parent: parent ?? {}, context: { user: ctx.user } };
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function selectPath(value: unknown, path: string[]): unknown {
  let out = value;
  for (const key of path) out = out == null ? undefined : (out as Record<string, unknown>)[key];
  return out ?? null;
}

function connectorOf(ctx: HubContext, name: string): HttpConnector {
  return ctx.connectors[name] as HttpConnector;
}
