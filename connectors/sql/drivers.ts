import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import type { Dialect } from './statement.ts';

export interface SqlStatement {
  sql: string;
  params: unknown[];
}

export type Row = Record<string, unknown>;

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface PoolOptions {
  min: number;
  max: number;
  idleTimeoutMs: number;
  /** How long a statement may run on the server. */
  statementTimeoutMs: number;
}

/**
 * What a statement without rows (INSERT, UPDATE, DELETE without RETURNING) answers, under these
 * names whatever the connector's `columns` mapping, alike on every engine: `affectedRows`, the
 * rows the statement matched; `insertId`, the id of the row it inserted (SQLite: the rowid, of
 * the last row for a multi-row INSERT; MySQL/MariaDB: the AUTO_INCREMENT value it generated, of
 * the first row), else null. PostgreSQL reports no generated id: there `insertId` is always null,
 * and `INSERT … RETURNING id` answers it as a row.
 */
export interface WriteResult {
  affectedRows: number;
  insertId: number | null;
}

/**
 * One database behind one interface. `run` executes statements on one connection, in a
 * transaction when asked, and answers the last statement's rows; a statement without rows
 * answers one row, its WriteResult.
 */
export interface SqlDriver {
  readonly dialect: Dialect;
  run(statements: SqlStatement[], transaction: boolean): Promise<Row[]>;
  ping(): Promise<void>;
  pool(): PoolStats;
  close(): Promise<void>;
}

function writeResult(affectedRows: number, insertId: number | null): Row {
  return { affectedRows, insertId } satisfies WriteResult;
}

export function dialectOf(url: string): Dialect | undefined {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgres';
  if (/^mysql:\/\//.test(url)) return 'mysql';
  return undefined;
}

// Each driver is loaded when a connector needs it: `junction check` and a hub without PostgreSQL
// or MySQL do not pay for loading them.
const require = createRequire(import.meta.url);
const sqlite = () => require('better-sqlite3') as typeof Database;
const postgres = () => require('pg') as typeof pg;
const mysqlDriver = () => require('mysql2/promise') as typeof mysql;

export function createDriver(url: string, pool: PoolOptions, baseDir: string): SqlDriver {
  switch (dialectOf(url)) {
    case 'sqlite':
      return new SqliteDriver(sqlitePath(url, baseDir));
    case 'postgres':
      return new PostgresDriver(url, pool);
    case 'mysql':
      return new MysqlDriver(url, pool);
    default:
      throw new TypeError(`unsupported database URL: ${url.split(':')[0]}`);
  }
}

/** `sqlite:./a.db`, `sqlite:a.db` (relative to the config file), `sqlite:///abs/a.db`, `sqlite::memory:`. */
export function sqlitePath(url: string, baseDir: string): string {
  const rest = url.slice('sqlite:'.length);
  if (rest === ':memory:') return rest;
  const file = rest.startsWith('///') ? rest.slice(2) : rest.startsWith('//') ? rest.slice(2) : rest;
  return path.resolve(baseDir, file);
}

// ---- SQLite (better-sqlite3) -------------------------------------------------------------------

const MAX_PREPARED = 500;

/**
 * Embedded SQLite: one synchronous connection, so a statement blocks the event loop while it
 * runs; meant for the demo and small local data. WAL mode lets readers and a writer overlap.
 */
class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #prepared = new Map<string, Database.Statement>();
  readonly #lastInsertRowid: Database.Statement;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    this.#db = new (sqlite())(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
    this.#lastInsertRowid = this.#db.prepare('SELECT last_insert_rowid()').pluck();
  }

  /** Runs a script of many statements (a seed); no parameters. */
  exec(script: string): void {
    this.#db.exec(script);
  }

  hasTables(): boolean {
    return this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").get() !== undefined;
  }

  async run(statements: SqlStatement[], transaction: boolean): Promise<Row[]> {
    const runAll = () => {
      let rows: Row[] = [];
      for (const { sql, params } of statements) rows = this.#one(sql, params);
      return rows;
    };
    return transaction ? this.#db.transaction(runAll)() : runAll();
  }

  #one(sql: string, params: unknown[]): Row[] {
    let statement = this.#prepared.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      if (this.#prepared.size >= MAX_PREPARED) this.#prepared.delete(this.#prepared.keys().next().value!);
      this.#prepared.set(sql, statement);
    }
    if (statement.reader) return statement.all(...params) as Row[];
    // lastInsertRowid is the connection's last insert, whichever statement made it: an UPDATE
    // would answer an earlier INSERT's id. It is this statement's only when it moved.
    const before = this.#lastInsertRowid.get() as number | bigint;
    const result = statement.run(...params);
    const inserted = result.changes > 0 && result.lastInsertRowid !== before;
    return [writeResult(result.changes, inserted ? Number(result.lastInsertRowid) : null)];
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  pool(): PoolStats {
    return { total: 1, idle: 1, waiting: 0 };
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

// ---- PostgreSQL (pg) -------------------------------------------------------------------------

const DATE_OID = 1082;

class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(url: string, options: PoolOptions) {
    const driver = postgres();
    this.#pool = new driver.Pool({
      connectionString: url,
      min: options.min,
      max: options.max,
      idleTimeoutMillis: options.idleTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      connectionTimeoutMillis: options.statementTimeoutMs,
      // A DATE stays the text the database sent ("2026-11-21"): pg would make it local midnight,
      // a day off once written as UTC.
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === DATE_OID ? (v: string) => v : driver.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
    });
    // An idle client whose server went away: the pool drops it; the next call reconnects.
    this.#pool.on('error', () => undefined);
  }

  async run(statements: SqlStatement[], transaction: boolean): Promise<Row[]> {
    const client = await this.#pool.connect();
    let broken: unknown;
    try {
      if (transaction) await client.query('BEGIN');
      let rows: Row[] = [];
      for (const { sql, params } of statements) {
        const result = await client.query(sql, params);
        // PostgreSQL reports no generated id (RETURNING does).
        rows = result.fields.length > 0 ? result.rows : [writeResult(result.rowCount ?? 0, null)];
      }
      if (transaction) await client.query('COMMIT');
      return rows;
    } catch (error) {
      if (transaction) await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
      throw error;
    } finally {
      client.release(broken as Error | undefined);
    }
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  pool(): PoolStats {
    return { total: this.#pool.totalCount, idle: this.#pool.idleCount, waiting: this.#pool.waitingCount };
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}

// ---- MySQL / MariaDB (mysql2) ------------------------------------------------------------------

interface Mysql2PoolInternals {
  pool: { _allConnections: { length: number }; _freeConnections: { length: number }; _connectionQueue: { length: number } };
}

class MysqlDriver implements SqlDriver {
  readonly dialect = 'mysql' as const;
  readonly #pool: mysql.Pool;
  readonly #timeout: number;

  constructor(url: string, options: PoolOptions) {
    this.#pool = mysqlDriver().createPool({
      uri: url,
      connectionLimit: options.max,
      maxIdle: Math.max(options.min, 1),
      idleTimeout: options.idleTimeoutMs,
      waitForConnections: true,
      queueLimit: 0,
      connectTimeout: options.statementTimeoutMs,
      timezone: 'Z',
      decimalNumbers: true,
      supportBigNumbers: true,
    });
    this.#pool.on('connection', () => undefined);
    this.#timeout = options.statementTimeoutMs;
  }

  async run(statements: SqlStatement[], transaction: boolean): Promise<Row[]> {
    const connection = await this.#pool.getConnection();
    try {
      if (transaction) await connection.beginTransaction();
      let rows: Row[] = [];
      for (const { sql, params } of statements) {
        // execute: a server-side prepared statement, the values bound, never spliced.
        const [result] = await connection.execute({ sql, timeout: this.#timeout }, params as never[]);
        // insertId 0: no AUTO_INCREMENT value was generated (an UPDATE, a DELETE).
        const header = result as mysql.ResultSetHeader;
        rows = Array.isArray(result) ? (result as Row[]) : [writeResult(header.affectedRows, header.insertId || null)];
      }
      if (transaction) await connection.commit();
      return rows;
    } catch (error) {
      if (transaction) await connection.rollback().catch(() => undefined);
      throw mariadbCode(error, connection);
    } finally {
      connection.release();
    }
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  pool(): PoolStats {
    const core = (this.#pool as unknown as Mysql2PoolInternals).pool;
    const total = core._allConnections.length;
    return { total, idle: core._freeConnections.length, waiting: core._connectionQueue.length };
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}

/**
 * mysql2 names an error's errno after MySQL's table; MariaDB numbers its own errors (1900 and
 * up) differently, so its 4025 (a CHECK constraint failed) would read as MySQL's
 * ER_INNODB_AUTOEXTEND_SIZE_OUT_OF_RANGE. Those get MariaDB's name, else the bare errno.
 */
const MARIADB_ERRORS: Record<number, string> = { 1927: 'ER_CONNECTION_KILLED', 1969: 'ER_STATEMENT_TIMEOUT', 4025: 'ER_CONSTRAINT_FAILED' };

function mariadbCode(error: unknown, connection: mysql.PoolConnection): unknown {
  const e = error as { errno?: number; code?: string };
  const mariadb = (connection as unknown as { connection?: { _isMariaDB?: boolean } }).connection?._isMariaDB === true;
  if (mariadb && typeof e.errno === 'number' && e.errno >= 1900) {
    e.code = MARIADB_ERRORS[e.errno] ?? String(e.errno);
  }
  return error;
}

export { SqliteDriver };

/**
 * For `junction check`: a SQLite database to prepare statements against without changing
 * anything. The file read-only when it exists; else an in-memory copy of what the first start
 * would create (the seed), so a fresh clone checks clean.
 */
export function openSqliteForCheck(file: string, seed: string | undefined): Database.Database {
  if (file !== ':memory:' && existsSync(file)) return new (sqlite())(file, { readonly: true, fileMustExist: true });
  const db = new (sqlite())(':memory:');
  if (seed) db.exec(readFileSync(seed, 'utf8'));
  return db;
}
