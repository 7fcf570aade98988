import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createDriver, type Row, type SqlDriver, sqlitePath } from './drivers.ts';
import { fieldName, type SqlConfig } from './connector.ts';
import type { Dialect } from './statement.ts';

/** One column as the database describes it. */
export interface Column {
  name: string;
  /** The declared type, lowercased: `integer`, `character varying`, `tinyint(1)`, `timestamp with time zone`. */
  type: string;
  notNull: boolean;
}

export interface Table {
  name: string;
  columns: Column[];
  /** The primary key's columns, in key order; empty without one. */
  primaryKey: string[];
}

/** The database could not be opened or answered no query: nothing was introspected. */
export class UnreachableError extends Error {}

// ---- reading the catalog, one function per dialect ---------------------------------------------

/** SQLite: the tables of sqlite_master, the columns of PRAGMA table_info. */
export function sqliteTables(db: Database.Database): Table[] {
  const names = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
    .pluck()
    .all() as string[];
  return names.map((name) => {
    const info = db.pragma(`table_info("${name.replace(/"/g, '""')}")`) as { name: string; type: string; notnull: number; pk: number }[];
    return {
      name,
      columns: info.map((c) => ({ name: c.name, type: c.type.toLowerCase(), notNull: c.notnull === 1 })),
      primaryKey: info
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name),
    };
  });
}

/** PostgreSQL: information_schema, the base tables of the connection's current schema (the first of its search_path that exists, normally `public`). */
export async function postgresTables(driver: SqlDriver): Promise<Table[]> {
  const columns = await query(
    driver,
    `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable
       FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name, c.ordinal_position`,
  );
  const keys = await query(
    driver,
    `SELECT k.table_name, k.column_name
       FROM information_schema.table_constraints tc
       JOIN information_schema.key_column_usage k
         ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name AND k.table_name = tc.table_name
      WHERE tc.table_schema = current_schema() AND tc.constraint_type = 'PRIMARY KEY'
      ORDER BY k.table_name, k.ordinal_position`,
  );
  return tablesOf(columns, keys);
}

/** MySQL / MariaDB: information_schema, the base tables of the connection's database. */
export async function mysqlTables(driver: SqlDriver): Promise<Table[]> {
  const columns = await query(
    driver,
    `SELECT c.TABLE_NAME AS table_name, c.COLUMN_NAME AS column_name, c.COLUMN_TYPE AS data_type, c.IS_NULLABLE AS is_nullable
       FROM information_schema.COLUMNS c
       JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
      WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'
      ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`,
  );
  const keys = await query(
    driver,
    `SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name
       FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 'PRIMARY'
      ORDER BY TABLE_NAME, ORDINAL_POSITION`,
  );
  return tablesOf(columns, keys);
}

async function query(driver: SqlDriver, sql: string): Promise<Row[]> {
  return driver.run([{ sql, params: [] }], false);
}

function tablesOf(columns: Row[], keys: Row[]): Table[] {
  const tables = new Map<string, Table>();
  for (const c of columns) {
    const name = String(c.table_name);
    let table = tables.get(name);
    if (!table) tables.set(name, (table = { name, columns: [], primaryKey: [] }));
    table.columns.push({ name: String(c.column_name), type: String(c.data_type).toLowerCase(), notNull: c.is_nullable === 'NO' });
  }
  for (const k of keys) tables.get(String(k.table_name))?.primaryKey.push(String(k.column_name));
  return [...tables.values()];
}

// ---- opening the connector's database -----------------------------------------------------------

/**
 * The tables of a `sql` connector's database. SQLite is opened read-only; a database file that
 * does not exist yet, or has no table, is read from the connector's `seed` in memory, as the hub
 * would create it. Throws UnreachableError when the database cannot be opened or reached.
 */
export async function connectorTables(config: SqlConfig, baseDir: string): Promise<{ dialect: Dialect; tables: Table[] }> {
  if (config.url.startsWith('sqlite:')) return { dialect: 'sqlite', tables: sqliteConnectorTables(config, baseDir) };
  const driver = createDriver(config.url, { ...config.pool, min: 0, max: 1 }, baseDir);
  try {
    try {
      await driver.ping();
    } catch (error) {
      throw new UnreachableError(describe(error));
    }
    const tables = driver.dialect === 'postgres' ? await postgresTables(driver) : await mysqlTables(driver);
    return { dialect: driver.dialect, tables };
  } finally {
    await driver.close().catch(() => undefined);
  }
}

function sqliteConnectorTables(config: SqlConfig, baseDir: string): Table[] {
  const file = sqlitePath(config.url, baseDir);
  const exists = file !== ':memory:' && existsSync(file);
  let db: Database.Database | undefined;
  try {
    if (exists) db = new Database(file, { readonly: true, fileMustExist: true });
    const tables = db ? sqliteTables(db) : [];
    if (tables.length > 0 || !config.seed) {
      if (!exists && file !== ':memory:') throw new UnreachableError(`no database file at ${file}`);
      return tables;
    }
    db?.close();
    db = new Database(':memory:');
    db.exec(readFileSync(path.resolve(baseDir, config.seed), 'utf8'));
    return sqliteTables(db);
  } catch (error) {
    throw error instanceof UnreachableError ? error : new UnreachableError(describe(error));
  } finally {
    db?.close();
  }
}

/** One line about a driver error (a refused connection to several addresses has no message of its own). */
function describe(error: unknown): string {
  const e = error as { message?: string; code?: string; errors?: { message?: string }[] };
  return (e.message || e.errors?.[0]?.message || e.code || String(error)).split('\n')[0]!;
}

// ---- SDL ----------------------------------------------------------------------------------------

export interface SdlOptions {
  /** The connector's name, for `@sql(connector: …)`. */
  connector: string;
  dialect: Dialect;
  /** The connector's `columns` option: fields are named as the connector will name the columns. */
  columns: SqlConfig['columns'];
  /** Type names already taken (the hub's built-in types). */
  reservedTypes?: Iterable<string>;
  /** Query fields already taken (`hub`). */
  reservedFields?: Iterable<string>;
}

const DIALECT_NAMES: Record<Dialect, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL', mysql: 'MySQL' };
const BUILTIN_TYPES = ['Query', 'Mutation', 'Subscription', 'String', 'Int', 'Float', 'Boolean', 'ID'];
const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
const BIGINT_NOTE = 'bigint: Int is 32-bit, a value beyond ±2147483647 fails; map it to String if it can be that large';

/**
 * SDL for `tables`, a starting point to edit: one object type per table, its columns as fields,
 * and per table an `extend type Query` with a list field and, for a single-column primary key,
 * a by-id field, each bound with `@sql`.
 */
export function tablesToSdl(tables: Table[], options: SdlOptions): string {
  const usedTypes = new Set([...BUILTIN_TYPES, ...(options.reservedTypes ?? [])]);
  const usedFields = new Set(options.reservedFields ?? []);
  const blocks: string[] = [];
  const sorted = [...tables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const table of sorted) {
    const words = wordsOf(table.name);
    if (words.length === 0) {
      blocks.push(`# table ${JSON.stringify(table.name)}: no GraphQL name can be made of it`);
      continue;
    }
    const singular = [...words.slice(0, -1), singularOf(words.at(-1)!)];
    const typeName = unique(pascal(singular), usedTypes);
    const key = table.primaryKey.length === 1 ? table.primaryKey[0] : undefined;

    const lines: string[] = [];
    const fields = new Set<string>();
    let keyField: string | undefined;
    for (const column of table.columns) {
      const name = fieldName(column.name, options.columns);
      if (!GRAPHQL_NAME.test(name) || name.startsWith('__') || fields.has(name)) {
        lines.push(`  # column ${JSON.stringify(column.name)}: not usable as the field name ${JSON.stringify(name)}; select it AS another name`);
        continue;
      }
      fields.add(name);
      if (column.name === key) {
        keyField = name;
        lines.push(`  ${name}: ID!`);
        continue;
      }
      const { type, note } = graphqlType(column.type, options.dialect);
      lines.push(`  ${name}: ${type}${column.notNull ? '!' : ''}${note ? ` # ${note}` : ''}`);
    }
    if (fields.size === 0) {
      blocks.push(`# table ${JSON.stringify(table.name)}: no column usable as a field`);
      continue;
    }
    blocks.push(`type ${typeName} {\n${lines.join('\n')}\n}`);

    const from = quoteIdent(table.name, options.dialect);
    const orderBy = table.primaryKey.length > 0 ? ` ORDER BY ${table.primaryKey.map((c) => quoteIdent(c, options.dialect)).join(', ')}` : '';
    const connector = JSON.stringify(options.connector);
    const listField = unique(camel(words), usedFields);
    const queries = [
      `  ${listField}(first: Int = 50): [${typeName}!] @sql(connector: ${connector}, query: ${JSON.stringify(`SELECT * FROM ${from}${orderBy} LIMIT :args.first`)})`,
    ];
    if (key && keyField) {
      const byId = unique(camel(singular) === listField ? `${listField}ById` : camel(singular), usedFields);
      const where = `SELECT * FROM ${from} WHERE ${quoteIdent(key, options.dialect)} = :args.${keyField}`;
      queries.push(`  ${byId}(${keyField}: ID!): ${typeName} @sql(connector: ${connector}, query: ${JSON.stringify(where)})`);
    }
    blocks.push(`extend type Query {\n${queries.join('\n')}\n}`);
  }
  const header = `# Generated by \`junction introspect sql --connector ${options.connector}\` from the ${DIALECT_NAMES[options.dialect]} database: a starting point to edit.`;
  if (blocks.length === 0) return `${header}\n# The database has no tables.\n`;
  return `${header}\n\n${blocks.join('\n\n')}\n`;
}

/** The GraphQL type of a column type (lowercased), and a note where the mapping loses something. */
function graphqlType(type: string, dialect: Dialect): { type: string; note?: string } {
  const t = type.trim();
  if (dialect === 'mysql' && /^tinyint\(1\)/.test(t)) return { type: 'Boolean' };
  if (/bool/.test(t)) return { type: 'Boolean' };
  if (/bigint|int8\b/.test(t)) return { type: 'Int', note: BIGINT_NOTE };
  if (/int/.test(t) && !/interval|point/.test(t)) return { type: 'Int' };
  if (/^(numeric|decimal|real|float|double|money)/.test(t) || (dialect === 'sqlite' && /real|floa|doub|numeric|decimal/.test(t))) {
    return { type: 'Float' };
  }
  if (/^json/.test(t)) return { type: 'String', note: 'json: the driver answers an object; select it as text to read it as a String' };
  if (/blob|bytea|binary/.test(t)) return { type: 'String', note: 'binary: select it encoded (hex, base64) to read it as a String' };
  if (dialect === 'postgres' && /^(array|user-defined)$/.test(t)) return { type: 'String', note: `${t}: check how the driver answers it` };
  // text, char, varchar, enum, uuid, dates and times (ISO 8601 text), and anything else.
  return { type: 'String' };
}

const RESERVED_WORDS = new Set(
  'all and as asc between by case check column constraint create cross current_date current_time current_timestamp current_user default delete desc distinct drop else end exists false fetch for foreign from full grant group having in index inner insert intersect into is join key left like limit natural not null offset on or order outer primary references right select session_user set table then to true union unique update user using values when where window with'.split(
    ' ',
  ),
);

/** An identifier as the dialect reads it: bare when plain lowercase and not a keyword, else quoted. */
function quoteIdent(name: string, dialect: Dialect): string {
  if (/^[a-z_][a-z0-9_]*$/.test(name) && !RESERVED_WORDS.has(name)) return name;
  return dialect === 'mysql' ? `\`${name.replace(/`/g, '``')}\`` : `"${name.replace(/"/g, '""')}"`;
}

/** `order_items` → ["order", "items"]; `OrderItems` → ["Order", "Items"]. */
function wordsOf(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w, i) => (i === 0 && /^[0-9]/.test(w) ? `T${w}` : w));
}

function pascal(words: string[]): string {
  return words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

function camel(words: string[]): string {
  const p = pascal(words);
  return p[0]!.toLowerCase() + p.slice(1);
}

/** Singular-ish: customers → customer, categories → category, addresses → address, status stays. */
function singularOf(word: string): string {
  const w = word.toLowerCase();
  if (w.length > 3 && w.endsWith('ies')) return `${word.slice(0, -3)}${word.at(-3) === 'I' ? 'Y' : 'y'}`;
  if (/(ss|x|ch|sh|zz)es$/.test(w)) return word.slice(0, -2);
  if (/(ss|us|is)$/.test(w) || !w.endsWith('s') || w.length < 3) return word;
  return word.slice(0, -1);
}

function unique(name: string, used: Set<string>): string {
  let candidate = name;
  for (let n = 2; used.has(candidate); n++) candidate = `${name}${n}`;
  used.add(candidate);
  return candidate;
}
