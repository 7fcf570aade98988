/**
 * The `sql` connector against real databases: one behavioural suite run on SQLite (a temp file),
 * PostgreSQL and MariaDB/MySQL (the machine's services). Each engine gets its own freshly
 * created shop (a temp file, a unique schema, a unique database), seeded with 100 customers,
 * and its own hub serving `@sql` fields over it. Then `junction introspect sql` as a user runs it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { SignJWT } from 'jose';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../src/connector-registry.ts';
import { buildSchema } from '../../src/schema.ts';
import { gql, type GraphQLResponse, project, ROOT, runCli, startHub, type TestHub } from '../../test/helpers.ts';

type Engine = 'sqlite' | 'postgres' | 'mysql';
type Row = Record<string, unknown>;

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';
const START: Record<Exclude<Engine, 'sqlite'>, string> = {
  postgres: 'PostgreSQL does not answer at 127.0.0.1:5432; start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  mysql: 'MariaDB does not answer at 127.0.0.1:3306; start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd',
};

const SECRET = 'sql-test-signing-secret-0123456789';

/** A bearer token for user `sub` with the admin role (the management API needs it once auth is on). */
async function bearer(sub: string): Promise<Record<string, string>> {
  const token = await new SignJWT({ roles: ['admin'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
  return { authorization: `Bearer ${token}` };
}

// ---- the shop, per engine -------------------------------------------------------------------

const CUSTOMERS = 100;
const CITIES = ['London', 'Paris', 'Berlin', 'Madrid', 'Rome'];
const STATUSES = ['placed', 'shipped', 'delivered'];
const HOUR = 3_600_000;
const BASE = Date.UTC(2026, 0, 1);

interface Customer {
  id: string;
  name: string;
  email: string;
  city: string;
  vip: boolean;
  createdAt: string;
}
interface Order {
  id: string;
  customerId: string;
  status: string;
  amount: number;
  note: string | null;
  placedAt: string;
}

const customerOf = (i: number): Customer => ({
  id: String(i),
  name: `Customer ${i}`,
  email: `c${i}@example.com`,
  city: CITIES[i % CITIES.length]!,
  vip: i % 10 === 0,
  createdAt: new Date(BASE + i * HOUR).toISOString(),
});

/** Customer i has i % 4 orders: every fourth customer has none. */
const ORDERS: Order[] = [];
for (let i = 1, id = 1; i <= CUSTOMERS; i++) {
  for (let j = 0; j < i % 4; j++, id++) {
    ORDERS.push({
      id: String(id),
      customerId: String(i),
      status: STATUSES[j]!,
      amount: Number(`${i}.${j}5`),
      note: j === 1 ? `note ${id}` : null,
      placedAt: new Date(BASE + i * 24 * HOUR + j * HOUR).toISOString(),
    });
  }
}
const ordersOf = (i: number) => ORDERS.filter((o) => o.customerId === String(i));

interface EngineSpec {
  ddl: string[];
  /** A timestamp literal the engine stores. */
  ts(iso: string): string;
  /** A statement taking ~50 ms (SQLite: a plain read) answering :args.n. */
  slow: string;
  sqlCode: { check: string; unique: string; syntax: string };
  /** What the engine's error names as the UNIQUE (email) constraint. */
  uniqueConstraint: string;
  syntaxMessage: string;
}

const ENGINES: Record<Engine, EngineSpec> = {
  sqlite: {
    ddl: [
      `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, city TEXT NOT NULL,
        vip BOOLEAN NOT NULL DEFAULT 0, created_at TEXT NOT NULL, CONSTRAINT customers_email_key UNIQUE (email))`,
      `CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id), status TEXT NOT NULL,
        amount NUMERIC NOT NULL, note TEXT, placed_at TEXT NOT NULL)`,
      `CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance_cents INTEGER NOT NULL,
        CONSTRAINT balance_not_negative CHECK (balance_cents >= 0))`,
    ],
    ts: (iso) => iso,
    slow: 'SELECT :args.n AS n',
    sqlCode: { check: 'SQLITE_CONSTRAINT_CHECK', unique: 'SQLITE_CONSTRAINT_UNIQUE', syntax: 'SQLITE_ERROR' },
    uniqueConstraint: 'customers.email',
    syntaxMessage: 'sqlite: near "SELEC": syntax error',
  },
  postgres: {
    ddl: [
      `CREATE TABLE customers (id SERIAL PRIMARY KEY, name TEXT NOT NULL, email VARCHAR(255) NOT NULL, city VARCHAR(100) NOT NULL,
        vip BOOLEAN NOT NULL DEFAULT FALSE, created_at TIMESTAMPTZ NOT NULL, CONSTRAINT customers_email_key UNIQUE (email))`,
      `CREATE TABLE orders (id SERIAL PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id), status VARCHAR(20) NOT NULL,
        amount NUMERIC(10, 2) NOT NULL, note TEXT, placed_at TIMESTAMPTZ NOT NULL)`,
      `CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance_cents BIGINT NOT NULL,
        CONSTRAINT balance_not_negative CHECK (balance_cents >= 0))`,
    ],
    ts: (iso) => iso,
    slow: 'SELECT :args.n::int AS n FROM pg_sleep(0.05)',
    sqlCode: { check: '23514', unique: '23505', syntax: '42601' },
    uniqueConstraint: 'customers_email_key',
    syntaxMessage: 'postgres: syntax error at or near "SELEC"',
  },
  mysql: {
    ddl: [
      `CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
        city VARCHAR(100) NOT NULL, vip BOOLEAN NOT NULL DEFAULT FALSE, created_at DATETIME NOT NULL,
        CONSTRAINT customers_email_key UNIQUE (email)) ENGINE=InnoDB`,
      `CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(20) NOT NULL,
        amount DECIMAL(10, 2) NOT NULL, note TEXT, placed_at DATETIME NOT NULL,
        CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB`,
      `CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(100) NOT NULL, balance_cents BIGINT NOT NULL,
        CONSTRAINT balance_not_negative CHECK (balance_cents >= 0)) ENGINE=InnoDB`,
    ],
    ts: (iso) => iso.slice(0, 19).replace('T', ' '),
    slow: 'SELECT CAST(:args.n AS SIGNED) + SLEEP(0.05) AS n',
    // MariaDB's own errno 4025, not MySQL 8's ER_INNODB_AUTOEXTEND_SIZE_OUT_OF_RANGE of the same number.
    sqlCode: { check: 'ER_CONSTRAINT_FAILED', unique: 'ER_DUP_ENTRY', syntax: 'ER_PARSE_ERROR' },
    uniqueConstraint: 'customers_email_key',
    syntaxMessage: "mysql: You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'SELEC * FROM customers'",
  },
};

function seedStatements(spec: EngineSpec): string[] {
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const customers = Array.from({ length: CUSTOMERS }, (_, k) => customerOf(k + 1)).map(
    (c) => `(${c.id}, ${q(c.name)}, ${q(c.email)}, ${q(c.city)}, ${c.vip ? 1 : 0}, ${q(spec.ts(c.createdAt))})`,
  );
  const orders = ORDERS.map(
    (o) => `(${o.id}, ${o.customerId}, ${q(o.status)}, ${o.amount}, ${o.note === null ? 'NULL' : q(o.note)}, ${q(spec.ts(o.placedAt))})`,
  );
  // PostgreSQL takes 1/0 for a boolean only as a cast: the literal goes in as TRUE/FALSE there.
  const pgBool = (rows: string[]) => (spec === ENGINES.postgres ? rows.map((r) => r.replace(/, ([01]), '/, (_m, b: string) => `, ${b === '1' ? 'TRUE' : 'FALSE'}, '`)) : rows);
  return [
    `INSERT INTO customers (id, name, email, city, vip, created_at) VALUES ${pgBool(customers).join(', ')}`,
    `INSERT INTO orders (id, customer_id, status, amount, note, placed_at) VALUES ${orders.join(', ')}`,
    "INSERT INTO accounts (id, owner, balance_cents) VALUES (1, 'alice', 1000), (2, 'bob', 500)",
  ];
}

// ---- database handles (the test's own connections, independent of the hub) ----------------

interface Admin {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  close(): Promise<void>;
}

async function reachable(engine: Exclude<Engine, 'sqlite'>): Promise<void> {
  try {
    const admin = await connectAdmin(engine, engine === 'postgres' ? PG_URL : MYSQL_URL);
    await admin.query('SELECT 1');
    await admin.close();
  } catch (error) {
    throw new Error(`${START[engine]} (${(error as Error).message})`);
  }
}

async function connectAdmin(engine: Engine, url: string): Promise<Admin> {
  if (engine === 'sqlite') {
    const db = new Database(url.slice('sqlite:'.length));
    return {
      query: async (sql, params = []) => {
        const st = db.prepare(sql);
        if (st.reader) return st.all(...params) as Row[];
        st.run(...params);
        return [];
      },
      close: async () => void db.close(),
    };
  }
  if (engine === 'postgres') {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    await client.connect();
    return { query: async (sql, params) => (await client.query(sql, params)).rows as Row[], close: () => client.end() };
  }
  const conn = await mysql.createConnection({ uri: url, connectTimeout: 3000, timezone: 'Z', decimalNumbers: true });
  return {
    query: async (sql, params) => {
      const [rows] = await conn.query(sql, params);
      return Array.isArray(rows) ? (rows as Row[]) : [];
    },
    close: () => conn.end(),
  };
}

/** A fresh, uniquely named place for one run's tables: a temp file, a schema, a database. */
interface Namespace {
  /** The connector's URL. */
  url: string;
  /** The same database through a TCP proxy on `port` (PostgreSQL, MySQL). */
  urlVia(port: number): string;
  target: { host: string; port: number };
  drop(): Promise<void>;
}

async function createNamespace(engine: Engine): Promise<Namespace> {
  const name = `junction_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  if (engine === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'junction-sql-'));
    return {
      url: `sqlite:${path.join(dir, 'shop.db')}`,
      urlVia: () => {
        throw new Error('SQLite has no network');
      },
      target: { host: '', port: 0 },
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (engine === 'postgres') {
    const admin = await connectAdmin('postgres', PG_URL);
    await admin.query(`CREATE SCHEMA ${name}`);
    await admin.close();
    const options = `?options=${encodeURIComponent(`-c search_path=${name}`)}`;
    return {
      url: `${PG_URL}${options}`,
      urlVia: (port) => `postgres://postgres@127.0.0.1:${port}/test${options}`,
      target: { host: '127.0.0.1', port: 5432 },
      drop: async () => {
        const a = await connectAdmin('postgres', PG_URL);
        await a.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
        await a.close();
      },
    };
  }
  const admin = await connectAdmin('mysql', MYSQL_URL);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.close();
  return {
    url: `mysql://root@127.0.0.1:3306/${name}`,
    urlVia: (port) => `mysql://root@127.0.0.1:${port}/${name}`,
    target: { host: '127.0.0.1', port: 3306 },
    drop: async () => {
      const a = await connectAdmin('mysql', MYSQL_URL);
      await a.query(`DROP DATABASE IF EXISTS ${name}`);
      await a.close();
    },
  };
}

/** A TCP proxy in front of a database: closing it drops every connection, like the database going away. */
class TcpProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(readonly target: { host: string; port: number }) {}

  async open(): Promise<this> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}

// ---- the hub's schema -----------------------------------------------------------------------

function sdl(spec: EngineSpec, network: boolean): string {
  return `
type Customer {
  id: ID!
  name: String!
  email: String!
  city: String!
  vip: Boolean!
  createdAt: String!
  orders: [Order!] @sql(connector: "shop", query: "SELECT * FROM orders WHERE customer_id IN (:parent.id) ORDER BY id", batchKey: "customerId")
  "Not batched: one statement per customer, :parent.id bound."
  orderCount: Int @sql(connector: "shop", query: "SELECT COUNT(*) AS n FROM orders WHERE customer_id = :parent.id")
}
type Order {
  id: ID!
  customerId: ID!
  status: String!
  amount: Float!
  note: String
  placedAt: String!
}
"Through the connector with columns: preserve."
type RawCustomer {
  id: ID!
  created_at: String
  createdAt: String
}
type Account {
  id: ID!
  owner: String!
  balanceCents: Int!
}
"What a statement without rows answers."
type Write {
  affectedRows: Int
  insertId: ID
  "The names before the column mapping: never answered."
  affected_rows: Int
  insert_id: ID
}
type Query {
  customers(first: Int = 20): [Customer!] @sql(connector: "shop", query: "SELECT * FROM customers ORDER BY id LIMIT :args.first")
  customer(id: ID!): Customer @sql(connector: "shop", query: "SELECT * FROM customers WHERE id = :args.id")
  customerByEmail(email: String!): Customer @sql(connector: "shop", query: "SELECT * FROM customers WHERE email = :args.email")
  customersNamed(name: String!): [Customer!] @sql(connector: "shop", query: "SELECT * FROM customers WHERE name = :args.name ORDER BY id")
  "The caller's own row: the token's sub is bound."
  me: Customer @sql(connector: "shop", query: "SELECT * FROM customers WHERE id = :context.user.id")
  citiesOf(city: String!, minId: Int!): [Customer!]
    @sql(connector: "shop", query: "SELECT * FROM customers WHERE city = :args.city AND id >= :args.minId ORDER BY id LIMIT 3")
  rawCustomer(id: ID!): RawCustomer @sql(connector: "raw", query: "SELECT id, created_at FROM customers WHERE id = :args.id")
  customerCount: Int @sql(connector: "shop", query: "SELECT COUNT(*) FROM customers")
  accounts: [Account!] @sql(connector: "shop", query: "SELECT * FROM accounts ORDER BY id")
  slow(n: Int!): Int @sql(connector: "shop", query: ${JSON.stringify(spec.slow)})
  "On a connector whose breaker opens at the first failure it counts."
  broken: [Customer!] @sql(connector: "strict", query: "SELEC * FROM customers")
  ${network ? 'flakyCount: Int @sql(connector: "flaky", query: "SELECT COUNT(*) FROM customers")' : ''}
}
type Mutation {
  createCustomer(name: String!, email: String!, city: String!): Customer
    @sql(
      connector: "shop"
      query: [
        "INSERT INTO customers (name, email, city, created_at) VALUES (:args.name, :args.email, :args.city, CURRENT_TIMESTAMP)"
        "SELECT * FROM customers WHERE email = :args.email"
      ]
    )
  "Two customers or none."
  createPair(a: String!, b: String!): [Customer!]
    @sql(
      connector: "shop"
      query: [
        "INSERT INTO customers (name, email, city, created_at) VALUES ('pair', :args.a, 'Oslo', CURRENT_TIMESTAMP)"
        "INSERT INTO customers (name, email, city, created_at) VALUES ('pair', :args.b, 'Oslo', CURRENT_TIMESTAMP)"
        "SELECT * FROM customers WHERE email IN (:args.a, :args.b) ORDER BY id"
      ]
    )
  addWriter(email: String!): Write
    @sql(connector: "shop", query: "INSERT INTO customers (name, email, city, created_at) VALUES ('writer', :args.email, 'Oslo', CURRENT_TIMESTAMP)")
  moveWriters(city: String!): Write @sql(connector: "shop", query: "UPDATE customers SET city = :args.city WHERE name = 'writer'")
  "Through the connector with columns: preserve."
  rawAddWriter(email: String!): Write
    @sql(connector: "raw", query: "INSERT INTO customers (name, email, city, created_at) VALUES ('writer', :args.email, 'Oslo', CURRENT_TIMESTAMP)")
  rawMoveWriters(city: String!): Write @sql(connector: "raw", query: "UPDATE customers SET city = :args.city WHERE name = 'writer'")
  transfer(from: ID!, to: ID!, amountCents: Int!): [Account!]
    @sql(
      connector: "shop"
      query: [
        "UPDATE accounts SET balance_cents = balance_cents + :args.amountCents WHERE id = :args.to"
        "UPDATE accounts SET balance_cents = balance_cents - :args.amountCents WHERE id = :args.from"
        "SELECT * FROM accounts WHERE id IN (:args.from, :args.to) ORDER BY id"
      ]
    )
}
`;
}

/** The value of one series in /metrics (`name{labels}` exactly as exposed), 0 when absent. */
async function metric(h: TestHub, series: string): Promise<number> {
  const text = await (await fetch(`${h.origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

type GqlError = NonNullable<GraphQLResponse['body']['errors']>[number];

// ---- the suite ------------------------------------------------------------------------------

describe.each(['sqlite', 'postgres', 'mysql'] as const)('sql connector on %s', (engine) => {
  const spec = ENGINES[engine];
  const network = engine !== 'sqlite';
  let ns: Namespace | undefined;
  let admin: Admin | undefined;
  let proxy: TcpProxy | undefined;
  let h: TestHub;
  let auth: Record<string, string>;
  /** Why setup failed (a database down): every test of the engine fails with it, none is skipped. */
  let setupError: unknown;
  const test = (name: string, fn: () => Promise<void>) =>
    it(name, async () => {
      if (setupError) throw setupError;
      await fn();
    });

  /** A GraphQL request as user 7, an admin. */
  const q = (query: string, variables?: Record<string, unknown>) => gql(h.url, query, variables, auth);
  /** The first positional parameter in the test's own SQL. */
  const p1 = engine === 'postgres' ? '$1' : '?';
  const count = async (sql: string, params: unknown[] = []) => Number(Object.values((await admin!.query(sql, params))[0]!)[0]);
  const connectorStatus = async (name: string) =>
    (await q(`{ hub { connector(name: "${name}") { breaker { state } pool { total idle waiting } } } }`)).body.data!.hub as {
      connector: { breaker: { state: string }; pool: { total: number; idle: number; waiting: number } };
    };

  beforeAll(async () => {
    try {
      await setup();
    } catch (error) {
      setupError = error;
    }
  });

  async function setup() {
    if (network) await reachable(engine);
    ns = await createNamespace(engine);
    admin = await connectAdmin(engine, ns.url);
    for (const statement of [...spec.ddl, ...seedStatements(spec)]) await admin.query(statement);
    if (engine === 'postgres') await admin.query("SELECT setval(pg_get_serial_sequence('customers', 'id'), 100)");
    const connectors: Record<string, unknown> = {
      shop: { type: 'sql', url: ns.url, pool: { max: 10 }, retry: { attempts: 0 }, breaker: { volumeThreshold: 2 } },
      raw: { type: 'sql', url: ns.url, columns: 'preserve', pool: { max: 2 } },
      strict: { type: 'sql', url: ns.url, pool: { max: 2 }, breaker: { volumeThreshold: 1, errorThresholdPercentage: 1 } },
    };
    if (network) {
      proxy = await new TcpProxy(ns.target).open();
      connectors.flaky = {
        type: 'sql',
        url: ns.urlVia(proxy.port),
        pool: { max: 2, statementTimeoutMs: 2000 },
        timeoutMs: 2000,
        retry: { attempts: 0 },
        breaker: { volumeThreshold: 3, resetTimeoutMs: 300 },
      };
    }
    h = await startHub(
      { 'schema/shop.graphql': sdl(spec, network) },
      // 100 customers × their orders is over the default cost limit (5000).
      { auth: { jwt: { secret: '${JWT_SECRET}' } }, server: { limits: { cost: 20_000 } }, connectors },
      { JWT_SECRET: SECRET },
    );
    auth = await bearer('7');
  }

  afterAll(async () => {
    await h?.stop();
    await proxy?.close();
    await admin?.close();
    await ns?.drop();
  });

  test('binds :args, :parent and :context.user values as parameters and camelCases columns (columns: preserve keeps them)', async () => {
    const r = await q(`{
      customer(id: "7") { id name email city vip createdAt orderCount }
      vip: customer(id: "10") { vip orderCount }
      citiesOf(city: "Paris", minId: 20) { id }
      me { id name }
      rawCustomer(id: "7") { id created_at createdAt }
      customerCount
    }`);
    expect(r.body).toEqual({
      data: {
        customer: { ...customerOf(7), orderCount: 3 },
        vip: { vip: true, orderCount: 2 },
        citiesOf: [{ id: '21' }, { id: '26' }, { id: '31' }],
        me: { id: '7', name: 'Customer 7' },
        rawCustomer: { id: '7', created_at: customerOf(7).createdAt, createdAt: null },
        customerCount: await count('SELECT COUNT(*) FROM customers'),
      },
    });
    // Another caller, another row; no caller: :context.user.id is NULL, no row.
    expect((await gql(h.url, '{ me { id } }', undefined, await bearer('12'))).body).toEqual({ data: { me: { id: '12' } } });
    expect((await gql(h.url, '{ me { id } }')).body).toEqual({ data: { me: null } });
  });

  test('batches a list of 100 customers with their orders into exactly 2 statements, each customer getting its own orders', async () => {
    const series = 'junction_sql_statements_total{connector="shop"}';
    const before = await metric(h, series);
    const r = await q('{ customers(first: 100) { id orders { id customerId status amount note placedAt } } }');
    const after = await metric(h, series);
    expect(r.body.errors).toBeUndefined();
    expect(after - before).toBe(2);
    const customers = r.body.data!.customers as { id: string; orders: Order[] }[];
    expect(customers.map((c) => c.id)).toEqual(Array.from({ length: CUSTOMERS }, (_, k) => String(k + 1)));
    for (const c of customers) expect(c.orders).toEqual(ordersOf(Number(c.id)));
    expect(customers.find((c) => c.id === '4')!.orders).toEqual([]);
    expect(customers.filter((c) => c.orders.length === 0)).toHaveLength(25);
    expect(customers.flatMap((c) => c.orders)).toHaveLength(ORDERS.length);
  });

  test('runs a transfer in one transaction: a debit the CHECK refuses rolls the credit back; a good one moves both', async () => {
    const balances = async () => (await admin!.query('SELECT id, balance_cents FROM accounts ORDER BY id')).map((a) => Number(a.balance_cents));
    expect(await balances()).toEqual([1000, 500]);

    const refused = await q('mutation { transfer(from: "2", to: "1", amountCents: 600) { id balanceCents } }');
    expect(refused.body.data).toEqual({ transfer: null });
    expect(refused.body.errors).toHaveLength(1);
    const error = refused.body.errors![0]!;
    expect(error.extensions).toMatchObject({
      code: 'UPSTREAM_ERROR',
      connector: 'shop',
      sqlCode: spec.sqlCode.check,
      constraint: 'balance_not_negative',
    });
    expect(error.message).toMatch(new RegExp(`^${engine}: .*balance_not_negative`));
    expect(await balances()).toEqual([1000, 500]);

    const moved = await q('mutation { transfer(from: "1", to: "2", amountCents: 250) { id owner balanceCents } }');
    expect(moved.body).toEqual({
      data: { transfer: [{ id: '1', owner: 'alice', balanceCents: 750 }, { id: '2', owner: 'bob', balanceCents: 750 }] },
    });
    expect(await balances()).toEqual([750, 750]);
    expect((await q('{ accounts { balanceCents } }')).body).toEqual({ data: { accounts: [{ balanceCents: 750 }, { balanceCents: 750 }] } });
  });

  test('refuses a duplicate email, names the constraint and writes nothing, even after an earlier statement succeeded', async () => {
    const total = () => count('SELECT COUNT(*) FROM customers');
    const before = await total();

    const dup = await q('mutation { createCustomer(name: "Copy", email: "c5@example.com", city: "Oslo") { id } }');
    expect(dup.body.data).toEqual({ createCustomer: null });
    expect(dup.body.errors).toHaveLength(1);
    expect(dup.body.errors![0]!.extensions).toMatchObject({
      code: 'UPSTREAM_ERROR',
      sqlCode: spec.sqlCode.unique,
      constraint: spec.uniqueConstraint,
    });
    expect(dup.body.errors![0]!.message).toContain(spec.uniqueConstraint);
    expect(await total()).toBe(before);

    // The first INSERT succeeds, the second is refused: the first is rolled back with it.
    const pair = await q('mutation { createPair(a: "pair-a@example.com", b: "c6@example.com") { id } }');
    expect(pair.body.data).toEqual({ createPair: null });
    expect(pair.body.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', constraint: spec.uniqueConstraint });
    expect(await total()).toBe(before);
    expect(await count(`SELECT COUNT(*) FROM customers WHERE email = ${p1}`, ['pair-a@example.com'])).toBe(0);

    // Both new: both written.
    const ok = await q('mutation { createPair(a: "pair-a@example.com", b: "pair-b@example.com") { email city } }');
    expect(ok.body).toEqual({
      data: { createPair: [{ email: 'pair-a@example.com', city: 'Oslo' }, { email: 'pair-b@example.com', city: 'Oslo' }] },
    });
    expect(await total()).toBe(before + 2);
  });

  test('stores an injection attempt as data', async () => {
    const evil = "'; DROP TABLE customers; --";
    const created = await q('mutation ($n: String!) { createCustomer(name: $n, email: "evil@example.com", city: "x\' OR \'1\'=\'1") { name city } }', {
      n: evil,
    });
    expect(created.body).toEqual({ data: { createCustomer: { name: evil, city: "x' OR '1'='1" } } });
    const back = await q('query ($n: String!) { customersNamed(name: $n) { name email } byEmail: customerByEmail(email: "evil@example.com") { name } }', { n: evil });
    expect(back.body).toEqual({ data: { customersNamed: [{ name: evil, email: 'evil@example.com' }], byEmail: { name: evil } } });
    // A classic tautology matches nothing.
    expect((await q(`{ customersNamed(name: "' OR '1'='1") { id } }`)).body).toEqual({ data: { customersNamed: [] } });
    const stored = await admin!.query(`SELECT name FROM customers WHERE email = ${p1}`, ['evil@example.com']);
    expect(stored).toEqual([{ name: evil }]);
    expect(await count('SELECT COUNT(*) FROM customers')).toBeGreaterThanOrEqual(CUSTOMERS + 1);
  });

  test('a statement without rows answers { affectedRows, insertId } under those names, whatever the column mapping; insertId null for an UPDATE and on PostgreSQL', async () => {
    const idOf = async (email: string) => String((await admin!.query(`SELECT id FROM customers WHERE email = ${p1}`, [email]))[0]!.id);
    const write = '{ affectedRows insertId affected_rows insert_id }';

    const added = await q(`mutation { addWriter(email: "writer-1@example.com") ${write} }`);
    const id1 = await idOf('writer-1@example.com');
    expect(Number(id1)).toBeGreaterThan(CUSTOMERS);
    // PostgreSQL reports no generated id without RETURNING.
    const insertId1 = engine === 'postgres' ? null : id1;
    expect(added.body).toEqual({ data: { addWriter: { affectedRows: 1, insertId: insertId1, affected_rows: null, insert_id: null } } });

    const raw = await q(`mutation { rawAddWriter(email: "writer-2@example.com") ${write} }`);
    const id2 = await idOf('writer-2@example.com');
    expect(Number(id2)).toBeGreaterThan(Number(id1));
    const insertId2 = engine === 'postgres' ? null : id2;
    expect(raw.body).toEqual({ data: { rawAddWriter: { affectedRows: 1, insertId: insertId2, affected_rows: null, insert_id: null } } });

    // An UPDATE generated no id (SQLite's connection still remembers writer-2's rowid, MariaDB
    // says 0). affectedRows counts the rows matched, also when a value stays the same.
    const moved = await q(`mutation { moveWriters(city: "Bergen") ${write} again: rawMoveWriters(city: "Bergen") ${write} }`);
    const noId = { affectedRows: 2, insertId: null, affected_rows: null, insert_id: null };
    expect(moved.body).toEqual({ data: { moveWriters: noId, again: noId } });
    expect(await count(`SELECT COUNT(*) FROM customers WHERE city = ${p1}`, ['Bergen'])).toBe(2);
  });

  test('answers 200 concurrent queries through a pool of 10 without exceeding it', async () => {
    const N = 200;
    let done = false;
    const samples: { total: number; idle: number; waiting: number }[] = [];
    const sampler = (async () => {
      while (!done) {
        samples.push((await connectorStatus('shop')).connector.pool);
        await sleep(10);
      }
    })();
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: N }, (_, n) => q('query ($n: Int!) { slow(n: $n) }', { n })));
    const elapsed = performance.now() - started;
    done = true;
    await sampler;
    for (const [n, r] of results.entries()) expect(r.body).toEqual({ data: { slow: n } });
    const after = (await connectorStatus('shop')).connector.pool;
    expect(after.waiting).toBe(0);
    expect(samples.length).toBeGreaterThan(0);
    if (network) {
      // 200 statements of 50 ms on 10 connections: at least 20 rounds, with calls queued meanwhile.
      expect(elapsed).toBeGreaterThanOrEqual(((N / 10) * 50) * 0.9);
      expect(Math.max(...samples.map((s) => s.total))).toBeLessThanOrEqual(10);
      expect(Math.max(...samples.map((s) => s.waiting))).toBeGreaterThan(0);
      expect(after.total).toBeLessThanOrEqual(10);
      expect(await metric(h, 'junction_connector_pool_connections{connector="shop",state="total"}')).toBeLessThanOrEqual(10);
    } else {
      expect(samples.every((s) => s.total === 1 && s.waiting === 0)).toBe(true);
    }
  });

  test('answers a SQL syntax error with UPSTREAM_ERROR from the database, siblings intact, the breaker not counting it', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await q('{ broken { id } customer(id: "3") { name } }');
      expect(r.body.data).toEqual({ broken: null, customer: { name: 'Customer 3' } });
      expect(r.body.errors).toHaveLength(1);
      const error = r.body.errors![0] as GqlError;
      expect(error.path).toEqual(['broken']);
      expect(error.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', connector: 'strict', sqlCode: spec.sqlCode.syntax });
      expect(error.message.startsWith(spec.syntaxMessage)).toBe(true);
    }
    // Its breaker opens at the first counted failure: four UPSTREAM_ERRORs and still closed.
    expect((await connectorStatus('strict')).connector.breaker.state).toBe('CLOSED');
    // Nor are they failures in its status: the database answered, refusing the statement.
    expect((await q('{ hub { connector(name: "strict") { requests failures lastError } } }')).body).toEqual({
      data: { hub: { connector: { requests: 4, failures: 0, lastError: null } } },
    });
    expect(await metric(h, 'junction_connector_requests_total{connector="strict",outcome="refused"}')).toBe(4);
  });

  if (network) {
    test('fails with UPSTREAM_ERROR when the database goes away, opens the breaker, and recovers once it is back', async () => {
      const flaky = () => q('{ flakyCount }');
      const total = await count('SELECT COUNT(*) FROM customers');
      expect((await flaky()).body).toEqual({ data: { flakyCount: total } });

      await proxy!.close();
      // volumeThreshold 3: the success above and two failures are 3 calls, 67 % failed: open.
      for (let i = 0; i < 2; i++) {
        const r = await flaky();
        expect(r.body.data).toEqual({ flakyCount: null });
        expect(r.body.errors).toHaveLength(1);
        expect(r.body.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', connector: 'flaky' });
        expect(r.body.errors![0]!.message).toMatch(new RegExp(`^${engine}: `));
      }
      expect((await connectorStatus('flaky')).connector.breaker.state).toBe('OPEN');
      const open = await flaky();
      expect(open.body.errors?.[0]?.extensions).toMatchObject({ code: 'CIRCUIT_OPEN', connector: 'flaky' });

      await proxy!.open(); // the same port
      await sleep(400);
      expect((await connectorStatus('flaky')).connector.breaker.state).toBe('HALF_OPEN');
      expect((await flaky()).body).toEqual({ data: { flakyCount: total } });
      expect((await connectorStatus('flaky')).connector.breaker.state).toBe('CLOSED');
      // The shop's own pool never noticed.
      expect((await connectorStatus('shop')).connector.breaker.state).toBe('CLOSED');
    });
  }

  test('checks health: ok against the live database' + (network ? ', not ok through a closed proxy' : ''), async () => {
    const test = async (name: string) =>
      (await q(`mutation { testConnector(name: "${name}") { name ok error } }`)).body.data!.testConnector as { name: string; ok: boolean; error: string | null };
    expect(await test('shop')).toEqual({ name: 'shop', ok: true, error: null });
    if (!network) return;
    await proxy!.close();
    try {
      const down = await test('flaky');
      expect(down.ok).toBe(false);
      expect(down.error).toMatch(/ECONNREFUSED|connect/i);
    } finally {
      await proxy!.open();
    }
    expect(await test('flaky')).toEqual({ name: 'flaky', ok: true, error: null });
  });

  test('introspects the database with `junction introspect sql` into SDL that builds and serves', async () => {
    const dir = project({
      'junction.config.yaml': stringify({ connectors: { shop: { type: 'sql', url: ns!.url } } }),
    });
    try {
      const r = await runCli(['introspect', 'sql', '--connector', 'shop'], { cwd: dir.dir });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(EXPECTED_SDL[engine]);
      writeFileSync(path.join(dir.dir, 'schema.graphql'), r.stdout);
      await expect(
        buildSchema({ schema: [path.join(dir.dir, 'schema.graphql')], resolvers: [], baseDir: dir.dir, authEnabled: false, registry: builtinRegistry, connectors: { shop: 'sql' } }),
      ).resolves.toBeDefined();
      const served = await startHub({ 'schema/introspected.graphql': r.stdout }, { connectors: { shop: { type: 'sql', url: ns!.url } } });
      try {
        const res = await gql(served.url, '{ customers(first: 2) { id name vip createdAt } customer(id: "7") { email } account(id: "1") { owner } }');
        expect(res.body).toEqual({
          data: {
            customers: [1, 2].map((i) => ({ id: String(i), name: `Customer ${i}`, vip: false, createdAt: customerOf(i).createdAt })),
            customer: { email: 'c7@example.com' },
            account: { owner: 'alice' },
          },
        });
      } finally {
        await served.stop();
      }
    } finally {
      dir.remove();
    }
  });
});

// ---- junction introspect sql: the expected SDL ------------------------------------------------

const header = (dialect: string) =>
  `# Generated by \`junction introspect sql --connector shop\` from the ${dialect} database: a starting point to edit.\n`;

function tablesSdl(types: { created: string; bigint: string }): string {
  return `
type Account {
  id: ID!
  owner: String!
  balanceCents: ${types.bigint}
}

extend type Query {
  accounts(first: Int = 50): [Account!] @sql(connector: "shop", query: "SELECT * FROM accounts ORDER BY id LIMIT :args.first")
  account(id: ID!): Account @sql(connector: "shop", query: "SELECT * FROM accounts WHERE id = :args.id")
}

type Customer {
  id: ID!
  name: String!
  email: String!
  city: String!
  vip: Boolean!
  createdAt: ${types.created}
}

extend type Query {
  customers(first: Int = 50): [Customer!] @sql(connector: "shop", query: "SELECT * FROM customers ORDER BY id LIMIT :args.first")
  customer(id: ID!): Customer @sql(connector: "shop", query: "SELECT * FROM customers WHERE id = :args.id")
}

type Order {
  id: ID!
  customerId: Int!
  status: String!
  amount: Float!
  note: String
  placedAt: ${types.created}
}

extend type Query {
  orders(first: Int = 50): [Order!] @sql(connector: "shop", query: "SELECT * FROM orders ORDER BY id LIMIT :args.first")
  order(id: ID!): Order @sql(connector: "shop", query: "SELECT * FROM orders WHERE id = :args.id")
}
`;
}

const BIGINT = 'Int! # bigint: Int is 32-bit, a value beyond ±2147483647 fails; map it to String if it can be that large';
const EXPECTED_SDL: Record<Engine, string> = {
  sqlite: header('SQLite') + tablesSdl({ created: 'String!', bigint: 'Int!' }),
  postgres: header('PostgreSQL') + tablesSdl({ created: 'String!', bigint: BIGINT }),
  mysql: header('MySQL') + tablesSdl({ created: 'String!', bigint: BIGINT }),
};

// ---- junction introspect sql: the demo, and the refusals --------------------------------------

describe('junction introspect sql', () => {
  const demoSql = readFileSync(path.join(ROOT, 'demo/shop.sql'), 'utf8');
  let dir: { dir: string; remove: () => void };

  beforeAll(() => {
    dir = project({
      'junction.config.yaml': stringify({
        connectors: {
          shop: { type: 'sql', url: 'sqlite:data/shop.db' },
          fresh: { type: 'sql', url: 'sqlite:data/fresh.db', seed: 'shop.sql' },
          missing: { type: 'sql', url: 'sqlite:data/missing.db' },
          api: { type: 'http', baseUrl: 'http://127.0.0.1:1' },
          down: { type: 'sql', url: 'postgres://postgres@127.0.0.1:1/test' },
        },
      }),
      'shop.sql': demoSql,
      'data/.keep': '',
    });
    const db = new Database(path.join(dir.dir, 'data/shop.db'));
    db.exec(demoSql);
    db.close();
  });
  afterAll(() => dir.remove());

  it('prints the demo shop as SDL that builds', async () => {
    const r = await runCli(['introspect', 'sql', '--connector', 'shop'], { cwd: dir.dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(DEMO_SDL);
    const file = path.join(dir.dir, 'out.graphql');
    writeFileSync(file, r.stdout);
    await expect(buildSchema({ schema: [file], resolvers: [], baseDir: dir.dir, authEnabled: false, registry: builtinRegistry, connectors: { shop: 'sql' } })).resolves.toBeDefined();
  });

  it('introspects the seed of a SQLite database not created yet, without creating it', async () => {
    const r = await runCli(['introspect', 'sql', '--connector', 'fresh', '--config', 'junction.config.yaml'], { cwd: dir.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(DEMO_SDL.replaceAll('connector: "shop"', 'connector: "fresh"').replace('--connector shop', '--connector fresh'));
    expect(() => readFileSync(path.join(dir.dir, 'data/fresh.db'))).toThrow(/ENOENT/);
  });

  it('exits 2 for an unknown connector or one that is not sql, 1 when the database cannot be reached', async () => {
    const run = (...args: string[]) => runCli(['introspect', ...args], { cwd: dir.dir });
    // Six child processes at once: each spends most of its time starting tsx.
    const [nope, api, down, missing, usage, what] = await Promise.all([
      run('sql', '--connector', 'nope'),
      run('sql', '--connector', 'api'),
      run('sql', '--connector', 'down'),
      run('sql', '--connector', 'missing'),
      run('sql'),
      run('mongo', '--connector', 'shop'),
    ]);
    expect(nope).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'junction: no connector "nope" in junction.config.yaml (sql connectors: shop, fresh, missing, down)\n',
    });
    expect(api).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'junction: connector "api" is of type http, not sql (sql connectors: shop, fresh, missing, down)\n',
    });
    expect(down).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'junction: cannot reach the database of connector "down": connect ECONNREFUSED 127.0.0.1:1\n',
    });
    expect(missing).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `junction: cannot reach the database of connector "missing": no database file at ${path.join(dir.dir, 'data/missing.db')}\n`,
    });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^junction: introspect sql needs --connector NAME\n\nUsage:/);
    expect(what.code).toBe(2);
    expect(what.stderr).toMatch(/^junction: introspect: unknown source "mongo" \(known: sql\)\n\nUsage:/);
  });
});

const DEMO_SDL = `${header('SQLite')}
type Account {
  id: ID!
  owner: String!
  balanceCents: Int!
}

extend type Query {
  accounts(first: Int = 50): [Account!] @sql(connector: "shop", query: "SELECT * FROM accounts ORDER BY id LIMIT :args.first")
  account(id: ID!): Account @sql(connector: "shop", query: "SELECT * FROM accounts WHERE id = :args.id")
}

type Customer {
  id: ID!
  name: String!
  email: String!
  city: String!
  createdAt: String!
}

extend type Query {
  customers(first: Int = 50): [Customer!] @sql(connector: "shop", query: "SELECT * FROM customers ORDER BY id LIMIT :args.first")
  customer(id: ID!): Customer @sql(connector: "shop", query: "SELECT * FROM customers WHERE id = :args.id")
}

type OrderItem {
  orderId: Int!
  productId: Int!
  quantity: Int!
}

extend type Query {
  orderItems(first: Int = 50): [OrderItem!] @sql(connector: "shop", query: "SELECT * FROM order_items ORDER BY order_id, product_id LIMIT :args.first")
}

type Order {
  id: ID!
  customerId: Int!
  status: String!
  placedAt: String!
}

extend type Query {
  orders(first: Int = 50): [Order!] @sql(connector: "shop", query: "SELECT * FROM orders ORDER BY id LIMIT :args.first")
  order(id: ID!): Order @sql(connector: "shop", query: "SELECT * FROM orders WHERE id = :args.id")
}

type Product {
  id: ID!
  name: String!
  priceCents: Int!
  stock: Int!
}

extend type Query {
  products(first: Int = 50): [Product!] @sql(connector: "shop", query: "SELECT * FROM products ORDER BY id LIMIT :args.first")
  product(id: ID!): Product @sql(connector: "shop", query: "SELECT * FROM products WHERE id = :args.id")
}
`;
