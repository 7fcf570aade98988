import path from 'node:path';
import type Database from 'better-sqlite3';
import { getNamedType, getNullableType, isLeafType, isListType } from 'graphql';
import {
  type CommonOptions,
  type DirectiveUse,
  type FieldBinding,
  type FieldDirective,
  type FieldResolver,
  markStale,
  type Outcome,
  requestLoader,
  type TemplateScope,
} from '../../src/index.ts';
import type { SqlConfig, SqlConnector } from './connector.ts';
import { dialectOf, openSqliteForCheck, type Row, sqlitePath } from './drivers.ts';
import { Statement } from './statement.ts';

const SDL = `
"""
Binds a field to SQL statements of a \`sql\` connector. Placeholders :args.x, :parent.x and
:context.user.x are bound as parameters, never spliced. Several statements run in one
transaction; a Mutation field always runs in a transaction. The field resolves to the last
statement's rows (a list field) or its first row (any other field); a scalar field takes the
first column. On a federation entity type (one with @key), resolves its entities: :parent.x
reads the representation.
"""
directive @sql(
  connector: String!
  "One statement, or a list of statements run in one transaction."
  query: [String!]!
  """
  Batch the field across parents: the query's one :parent.x placeholder (inside IN (…)) becomes
  every parent's value in one statement, and each row goes to the parent whose x equals the
  row's batchKey column (as a field name).
  """
  batchKey: String
) on FIELD_DEFINITION | OBJECT
`;

interface SqlArgs {
  connector: string;
  query: string[];
  batchKey?: string | null;
}

type Resolver = FieldResolver;

export const sqlDirective: FieldDirective = {
  name: 'sql',
  sdl: SDL,
  verify,
  bind(use: DirectiveUse): FieldBinding | string[] {
    const args = use.args as unknown as SqlArgs;
    const statements = args.query.map((q) => new Statement(q));
    const argumentNames = use.arguments.map((a) => a.name);
    const problems = statements.flatMap((s) => s.problems(argumentNames));
    if (statements.length === 0) problems.push('query needs at least one statement');
    const mutation = use.operation === 'mutation';
    const list = isListType(getNullableType(use.type));
    const transaction = mutation || statements.length > 1;
    const ttlMs = use.cache?.ttlMs;
    const staleIfOpen = use.cache?.staleIfOpen;

    let batchParam: string | undefined;
    if (args.batchKey) {
      const parentParams = statements.flatMap((s) => s.params.filter((p) => p.root === 'parent'));
      if (statements.length !== 1) problems.push('batchKey batches a single statement');
      if (mutation) problems.push('batchKey batches reads, not mutations');
      if (new Set(parentParams.map((p) => p.text)).size !== 1) {
        problems.push(`batchKey needs exactly one :parent.… placeholder, the key to batch on (found ${parentParams.length})`);
      }
      batchParam = parentParams[0]?.text;
    }
    if (problems.length > 0) return problems;
    if (mutation && use.cache) return ['@cache caches reads; a Mutation field is not one'];

    // A scalar field takes the first column: `SELECT count(*) …` for an Int.
    const leaf = isLeafType(getNamedType(use.type));
    const value = (row: Row | undefined) => (leaf && row ? Object.values(row)[0] : row) ?? null;
    const shape = (rows: Row[]) => (list ? rows.map(value) : value(rows[0]));

    if (args.batchKey && batchParam) {
      const batchKey = args.batchKey;
      const param = batchParam;
      const [statement] = statements as [Statement];
      const keyPath = statement.params.find((p) => p.text === param)!.path;
      const resolve: Resolver = async (parent, fieldArgs, ctx, info) => {
        const connector = ctx.connectors[args.connector] as SqlConnector;
        const key = valueAt(parent, keyPath);
        const rest = { args: fieldArgs, context: { user: ctx.user } };
        const loader = requestLoader<unknown, Outcome<unknown>>(
          ctx,
          `sql|${args.connector}|${use.coordinate}|${JSON.stringify(fieldArgs)}`,
          async (keys) => {
            connector.recordBatch(use.coordinate, keys.length);
            const scope: TemplateScope = { ...rest, parent: setAt(keyPath, [...keys]) };
            const compiled = statement.compile(connector.dialect, scope, new Set([param]));
            const outcome = await connector.query([compiled], { read: true, transaction: false, ttlMs, staleIfOpen });
            const { stale } = outcome;
            return keys.map((k) => ({ value: shape(outcome.value.filter((row) => String(row[batchKey]) === String(k))), stale }));
          },
          (k) => String(k),
        );
        const outcome = await loader.load(key);
        // Every parent's own path: a batch served stale marks each field it answered.
        markStale(ctx, info, outcome.stale, args.connector);
        return outcome.value;
      };
      return { resolve };
    }

    const resolve: Resolver = async (parent, fieldArgs, ctx, info) => {
      const connector = ctx.connectors[args.connector] as SqlConnector;
      const scope: TemplateScope = { args: fieldArgs, parent: parent ?? {}, context: { user: ctx.user } };
      const compiled = statements.map((s) => s.compile(connector.dialect, scope));
      const outcome = await connector.query(compiled, { read: !mutation, transaction, ttlMs, staleIfOpen });
      markStale(ctx, info, outcome.stale, args.connector);
      return shape(outcome.value);
    };
    return { resolve };
  },
};

const checkDatabases = new Map<string, Database.Database>();

/** `junction check`: SQLite prepares each statement; other engines are checked when they run. */
function verify(use: DirectiveUse, config: CommonOptions, baseDir: string): string[] {
  const { url, seed } = config as SqlConfig;
  if (dialectOf(url) !== 'sqlite') return [];
  const file = sqlitePath(url, baseDir);
  let db = checkDatabases.get(file);
  if (!db) {
    db = openSqliteForCheck(file, seed && path.resolve(baseDir, seed));
    checkDatabases.set(file, db);
  }
  const empty: TemplateScope = { args: {}, parent: {}, context: { user: null } };
  return (use.args as unknown as SqlArgs).query.flatMap((q) => {
    try {
      db.prepare(new Statement(q).compile('sqlite', empty).sql);
      return [];
    } catch (error) {
      return [`SQLite cannot prepare "${q}": ${(error as Error).message}`];
    }
  });
}

function valueAt(value: unknown, path: string[]): unknown {
  let out = value;
  for (const key of path) out = out == null ? undefined : (out as Record<string, unknown>)[key];
  return out;
}

/** `{ a: { b: value } }` for the path ["a", "b"]: a parent holding the batch's keys. */
function setAt(path: string[], value: unknown): unknown {
  return path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value);
}
