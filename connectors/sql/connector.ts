import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  BaseConnector,
  type ConnectorDeps,
  connectorConfig,
  type ConnectorStatus,
  nonNegativeInt,
  type Outcome,
  positiveInt,
  UpstreamError,
  UpstreamTimeoutError,
  z,
} from '../../src/index.ts';
import { createDriver, dialectOf, type Row, type SqlDriver, SqliteDriver, type SqlStatement } from './drivers.ts';
import type { Dialect } from './statement.ts';

export const sqlConfigSchema = connectorConfig({
  /** `sqlite:./file.db` (relative to the config file), `sqlite::memory:`, `postgres://…`, `mysql://…`. */
  url: z.string({ error: 'expected a database URL' }).refine((url) => dialectOf(url) !== undefined, {
    error: 'expected a sqlite:, postgres:// or mysql:// URL',
  }),
  pool: z
    .strictObject({
      /** Default 0. Connections kept open while idle. */
      min: nonNegativeInt().default(0),
      /** Default 10. Most connections; further calls wait for one. */
      max: positiveInt().default(10),
      /** Default 30000. An idle connection above `min` is closed after this. */
      idleTimeoutMs: positiveInt().default(30_000),
      /** Default 10000. The database cancels a statement running longer (PostgreSQL, MySQL). */
      statementTimeoutMs: positiveInt().default(10_000),
    })
    .prefault({}),
  /** Default "camelCase": column `customer_id` is field `customerId`. "preserve" keeps names. */
  columns: z.enum(['camelCase', 'preserve'], { error: 'expected camelCase or preserve' }).default('camelCase'),
  /** A SQL script run at start when the database has no table yet (SQLite): the demo's data. */
  seed: z.string({ error: 'expected a path to a .sql file' }).optional(),
})
  .refine((c) => c.seed === undefined || dialectOf(c.url) === 'sqlite', {
    error: 'seed is for sqlite: databases only',
    path: ['seed'],
  });
export type SqlConfig = z.output<typeof sqlConfigSchema>;

export interface SqlQueryOptions {
  /** A read: cacheable, shared with identical reads in flight, retried. */
  read: boolean;
  /** Run every statement in one transaction (mutations, and reads of several statements). */
  transaction: boolean;
  ttlMs?: number | undefined;
  staleIfOpen?: boolean | undefined;
}

/**
 * A SQL database (SQLite, PostgreSQL, MySQL/MariaDB) behind the pipeline: parameterized
 * statements on a connection pool, rows with their column names mapped to field names.
 */
export class SqlConnector extends BaseConnector<SqlConfig> {
  readonly dialect: Dialect;
  readonly #driver: SqlDriver;

  constructor(name: string, config: SqlConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.#driver = createDriver(config.url, config.pool, deps.baseDir);
    this.dialect = this.#driver.dialect;
    deps.metrics.pool(() => this.#driver.pool());
  }

  override async start(): Promise<void> {
    const { seed } = this.config;
    if (seed && this.#driver instanceof SqliteDriver && !this.#driver.hasTables()) {
      this.#driver.exec(readFileSync(path.resolve(this.deps.baseDir, seed), 'utf8'));
      this.deps.logger.info({ seed }, 'seeded an empty database');
    }
  }

  /** Runs compiled statements through the pipeline; resolves with the last statement's rows. */
  query(statements: SqlStatement[], options: SqlQueryOptions): Promise<Outcome<Row[]>> {
    return this.call({
      key: JSON.stringify(statements),
      safe: options.read,
      retryable: options.read,
      ttlMs: options.ttlMs,
      staleIfOpen: options.staleIfOpen,
      attempt: async () => {
        let rows: Row[];
        try {
          rows = await this.#driver.run(statements, options.transaction);
        } catch (error) {
          throw this.#error(error);
        }
        this.deps.metrics.statements(statements.length);
        return rows.map((row) => fieldValues(row, this.config.columns));
      },
    });
  }

  protected async ping(): Promise<void> {
    await this.#driver.ping();
  }

  override status(): ConnectorStatus {
    return { ...super.status(), pool: this.#driver.pool() };
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#driver.close();
  }

  /**
   * A driver error as the client sees it. The database could not be reached, or dropped the
   * connection: transient, counted by the breaker. The statement was refused (syntax, a
   * constraint): the caller's to fix, neither retried nor counted.
   */
  #error(error: unknown): UpstreamError | UpstreamTimeoutError {
    const e = error as { message: string; code?: string; errno?: number; constraint?: string; sqlState?: string };
    const code = e.code ?? '';
    if (code === '57014' || code === 'PROTOCOL_SEQUENCE_TIMEOUT') return new UpstreamTimeoutError(this.name, this.config.pool.statementTimeoutMs);
    const unreachable =
      /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|PROTOCOL_CONNECTION_LOST|ER_CON_COUNT_ERROR|57P0[1-3]|08\w{3})$/.test(code) ||
      /Connection terminated|timeout exceeded when trying to connect|connect ETIMEDOUT/i.test(e.message);
    const constraint = e.constraint ?? constraintOf(e.message);
    return new UpstreamError(this.name, `${this.dialect}: ${e.message}`, {
      transient: unreachable,
      countsAsFailure: unreachable,
      details: {
        ...(code && { sqlCode: code }),
        ...(constraint && { constraint }),
      },
    });
  }
}

/** The constraint a MySQL or SQLite message names (PostgreSQL's errors carry it as a field). */
function constraintOf(message: string): string | undefined {
  return (
    /constraint failed: ([\w.]+(?:, [\w.]+)*)/i.exec(message)?.[1] ?? // SQLite: UNIQUE constraint failed: customers.email
    /for key '([^']+)'/.exec(message)?.[1] ?? // MySQL: Duplicate entry 'x' for key 'customers.email'
    /CONSTRAINT [`"]?([\w.]+)[`"]?/i.exec(message)?.[1] // MySQL: … CONSTRAINT `accounts_chk_1` …
  );
}

/**
 * A row as fields see it: column names camelCased (unless `preserve`), and dates (pg and mysql2
 * answer timestamp columns as Date objects) as ISO 8601 text; graphql-js would serialize a Date
 * for a String field through valueOf(), as epoch milliseconds.
 */
function fieldValues(row: Row, columns: SqlConfig['columns']): Row {
  const out: Row = {};
  for (const [key, value] of Object.entries(row)) {
    out[fieldName(key, columns)] = value instanceof Date ? (Number.isNaN(value.getTime()) ? null : value.toISOString()) : value;
  }
  return out;
}

/** The field a column becomes: `customer_id` → `customerId` (camelCase), or as it is (preserve). */
export function fieldName(column: string, columns: SqlConfig['columns']): string {
  return columns === 'camelCase' ? column.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : column;
}
