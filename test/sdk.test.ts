// The connector SDK from the outside: a throwaway user project in the OS temp folder imports
// from 'junction' (node_modules/junction links to this package, as `npm install` would), defines
// a connector class of its own, registers it under `connectorTypes`, calls it from a typed code
// resolver and from its own directive, and sees batching, the breaker and the metrics work for
// it through the real `junction` command. The project's files are the README's "Write your own
// connector" example.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GraphQLResponse, gql, linkJunction, project, ROOT, runCli, SPAWN_TIMEOUT_MS } from './helpers.ts';
import { json, Upstream } from './upstream.ts';

/** The CRM's API token: the upstream demands it; it must never be shown. */
const TOKEN = 'crm-token-9f27c4e1b8d3';

// ---- the user's project ----------------------------------------------------------------------

const PACKAGE_JSON = `{ "name": "crm-hub", "private": true, "type": "module" }
`;

const TSCONFIG = `{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noEmit": true,
    "types": ["node"]
  },
  "include": ["connectors", "resolvers", "generated"]
}
`;

const CRM_CONNECTOR = `// A connector type of this project: a CRM's REST API behind the hub's pipeline.
import {
  BaseConnector,
  type ConnectorDeps,
  connectorConfig,
  defineConnectorType,
  displayUrl,
  type FieldDirective,
  HttpTransport,
  httpUrl,
  jsonBody,
  statusError,
  Template,
  UpstreamError,
  z,
} from 'junction';

export interface Account {
  id: string;
  name: string;
}

// The common options (timeoutMs, retry, breaker, rateLimit, cache, auth, headers, required)
// plus this type's own keys; a bad value is refused with its key path.
const crmConfig = connectorConfig({
  /** The API root: GET <baseUrl>/accounts?id=1&id=2 answers a list of accounts. */
  baseUrl: httpUrl(),
});
type CrmConfig = z.output<typeof crmConfig>;

export class CrmConnector extends BaseConnector<CrmConfig> {
  readonly #base: URL;
  readonly #transport: HttpTransport;
  readonly #account: (id: string) => Promise<Account | null>;

  constructor(name: string, config: CrmConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    this.#base = new URL(config.baseUrl.endsWith('/') ? config.baseUrl : config.baseUrl + '/');
    // A keep-alive pool, and the config's outbound auth (bearer, apiKey, basic, oauth2).
    this.#transport = new HttpTransport(name, {
      connections: 16,
      maxResponseBytes: 1024 * 1024,
      followRedirects: false,
      headers: config.headers,
      auth: config.auth,
    });
    // Every findAccount of the same tick becomes one GET /accounts?id=…&id=….
    this.#account = this.batch('findAccount', (ids: readonly string[]) => this.#accounts(ids));
  }

  /** One account by id, or null when the CRM has none. */
  findAccount(id: string): Promise<Account | null> {
    return this.#account(id);
  }

  async #accounts(ids: readonly string[]): Promise<(Account | null)[]> {
    const url = new URL('accounts', this.#base);
    for (const id of ids) url.searchParams.append('id', id);
    const { value } = await this.call({
      key: 'GET ' + url.href + ' ' + this.#transport.identity,
      safe: true, // a read: cacheable, shared with identical calls in flight
      retryable: true, // idempotent: retried after a transient failure
      attempt: async (signal) => {
        const response = await this.#transport.send('GET', url, {}, undefined, signal);
        if (response.status >= 400) throw statusError(this.name, response, '');
        const body = jsonBody(this.name, response);
        if (!Array.isArray(body)) {
          throw new UpstreamError(this.name, 'GET ' + displayUrl(url) + ' did not answer a list', { transient: false });
        }
        return body as Account[];
      },
    });
    const byId = new Map(value.map((account) => [String(account.id), account]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** The health check (testConnector, /readyz): GET <baseUrl>/health must answer 200. */
  protected async ping(signal: AbortSignal): Promise<void> {
    const url = new URL('health', this.#base);
    const status = await this.#transport.probe(url, signal);
    if (status !== 200) throw new Error('GET ' + displayUrl(url) + ' answered ' + status);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#transport.close();
  }
}

/** @crm(connector: "crm", account: "{parent.accountId}"): the field is that account. */
const crmDirective: FieldDirective = {
  name: 'crm',
  sdl: '"The account of a crm connector; account is a template: {parent.x}, {args.x}."\\n' +
    'directive @crm(connector: String!, account: String!) on FIELD_DEFINITION',
  // Runs once per field at start-up and at junction check: problems are sentences.
  bind(use) {
    const account = new Template(String(use.args.account));
    const problems = account.problems(use.arguments.map((a) => a.name));
    if (problems.length > 0) return problems;
    const name = String(use.args.connector);
    return {
      resolve: (parent, args, ctx) => {
        const scope = { args, parent: parent ?? {}, context: { user: ctx.user } };
        const id = account.render(scope, (v) => (v == null ? '' : String(v)));
        return (ctx.connectors[name] as CrmConnector).findAccount(id);
      },
    };
  },
};

export default defineConnectorType({
  type: 'crm',
  schema: crmConfig,
  create: (name, config, deps) => new CrmConnector(name, config, deps),
  directives: [crmDirective],
});
`;

const HOOKS_CONNECTOR = `// A connector type that receives: the hub serves POST /webhooks/<name> with inbound.handle.
import { BaseConnector, connectorConfig, defineConnectorType, type InboundRoute } from 'junction';

class HooksConnector extends BaseConnector {
  readonly inbound: InboundRoute = {
    maxBodyBytes: 64,
    handle: async (req) => ({ status: 202, body: { bytes: req.body.length } }),
  };

  protected async ping(): Promise<void> {}
}

export default defineConnectorType({
  type: 'hooks',
  schema: connectorConfig({}),
  create: (name, config, deps) => new HooksConnector(name, config, deps),
});
`;

const SDL = `type Query {
  "50 orders over 10 accounts."
  orders: [Order!]!
  account(id: ID!): Account
  "Answers without the CRM."
  status: String!
}

type Order {
  id: ID!
  accountId: ID!
  account: Account @crm(connector: "crm", account: "{parent.accountId}")
}

type Account {
  id: ID!
  name: String!
}
`;

const RESOLVERS = `import type { HubContext } from 'junction';

interface Order {
  id: string;
  accountId: string;
}

export default {
  Query: {
    orders: (): Order[] =>
      Array.from({ length: 50 }, (_, i) => ({ id: String(i + 1), accountId: String((i % 10) + 1) })),
    // Typed by generated/connectors.ts: ctx.connectors.crm is a CrmConnector.
    account: (_: unknown, { id }: { id: string }, ctx: HubContext) => ctx.connectors.crm.findAccount(id),
    status: () => 'ok',
  },
};
`;

const config = (baseUrl: string) => `server:
  host: 127.0.0.1
  logLevel: debug
connectorTypes:
  crm: ./connectors/crm.ts
  hooks: ./connectors/hooks.ts
connectors:
  crm:
    type: crm
    baseUrl: ${baseUrl}
    required: true
    auth: { type: bearer, token: "\${CRM_TOKEN}" }
    breaker: { volumeThreshold: 2, resetTimeoutMs: 600000 }
  events:
    type: hooks
`;

const CODEGEN = `schema: schema/**/*.graphql
generates:
  generated/connectors.ts:
    plugins: [junction-connectors]
`;

// ---- helpers -----------------------------------------------------------------------------------

const removers: (() => void)[] = [];
const children = new Set<ChildProcess>();

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
  }
  for (const remove of removers.splice(0)) remove();
});

/**
 * A project folder in the OS temp folder, outside the repository, with `junction` and
 * `@types/node` in its node_modules as `npm install junction` and `npm install -D @types/node`
 * would put them there.
 */
function userProject(files: Record<string, string>): string {
  const { dir, remove } = project(files);
  removers.push(remove);
  linkJunction(dir);
  mkdirSync(path.join(dir, 'node_modules/@types'), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules/@types/node'), path.join(dir, 'node_modules/@types/node'), 'dir');
  return dir;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The repository's TypeScript compiler over the project (`tsc -p <project>`). The project's
 * tsconfig leaves skipLibCheck off, so junction's published .d.ts files are checked too.
 */
function tsc(dir: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/.bin/tsc'), '-p', dir, '--pretty', 'false'], { cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tsc -p ${dir} did not exit in time\n${stdout}${stderr}`));
    }, SPAWN_TIMEOUT_MS * 2);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

type LogLine = Record<string, unknown> & { msg?: string };

interface Served {
  child: ChildProcess;
  url: string;
  origin: string;
  lines: LogLine[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `junction serve --port 0` in `cwd`, once its "serving" log line is out. */
function serve(cwd: string, env: NodeJS.ProcessEnv): Promise<Served> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/junction.mjs'), 'serve', '--port', '0'], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: LogLine[] = [];
  let stdout = '';
  let pending = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "serving" line in time\nstdout: ${stdout}\nstderr: ${stderr}`)), SPAWN_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      pending += chunk.toString();
      const complete = pending.split('\n');
      pending = complete.pop() ?? '';
      for (const text of complete.filter(Boolean)) {
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { raw: text };
        }
        lines.push(line);
        if (typeof line.url === 'string' && line.msg?.includes('serving')) {
          clearTimeout(timer);
          resolve({ child, url: line.url, origin: new URL(line.url).origin, lines, stdout: () => stdout, stderr: () => stderr, exited });
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`junction serve exited (${code ?? signal}) before serving\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

const ORDERS = '{ orders { id account { name } } status }';
const codes = (r: GraphQLResponse) => [...new Set(r.body.errors?.map((e) => e.extensions?.code))];

// ---- the CRM project, end to end ---------------------------------------------------------------

describe('a connector type of the project\'s own (connectorTypes), end to end', () => {
  let upstream: Upstream;
  /** While true the CRM answers every API call with 500. */
  let crmDown = false;
  let dir: string;
  const env = () => ({ CRM_TOKEN: TOKEN });
  const accountCalls = () => upstream.requests.filter((r) => r.url.startsWith('/accounts'));

  beforeAll(async () => {
    upstream = await new Upstream((req, res) => {
      const url = new URL(req.url, 'http://crm.invalid');
      if (url.pathname === '/health') return json(res, 200, { status: 'ok' });
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(res, 401, { message: 'unknown token' });
      if (crmDown) return json(res, 500, { message: 'the CRM is down' });
      if (url.pathname !== '/accounts') return json(res, 404, { message: 'no such resource' });
      const known = url.searchParams.getAll('id').filter((id) => /^([1-9]|10)$/.test(id));
      return json(res, 200, known.map((id) => ({ id, name: `Account ${id}` })));
    }).start();
    dir = userProject({
      'package.json': PACKAGE_JSON,
      'tsconfig.json': TSCONFIG,
      'connectors/crm.ts': CRM_CONNECTOR,
      'connectors/hooks.ts': HOOKS_CONNECTOR,
      'schema/shop.graphql': SDL,
      'resolvers/shop.ts': RESOLVERS,
      'junction.config.yaml': config(upstream.url),
      'codegen.yml': CODEGEN,
    });
  });

  afterAll(() => upstream.stop());

  it('junction codegen types ctx.connectors.crm as the CrmConnector: the project type-checks, and a typo does not', async () => {
    // Without the generated map, ctx.connectors.crm is only a Connector.
    const untyped = await tsc(dir);
    expect(untyped.stdout).toBe("resolvers/shop.ts(13,90): error TS2339: Property 'findAccount' does not exist on type 'Connector'.\n");
    expect(untyped.code).toBe(2);

    const generated = await runCli(['codegen'], { cwd: dir, env: env() });
    expect(generated).toMatchObject({ code: 0, stdout: 'wrote generated/connectors.ts\n', stderr: '' });
    expect(readFileSync(path.join(dir, 'generated/connectors.ts'), 'utf8')).toBe(
      [
        '// Generated by `junction codegen` from codegen.yml. Do not edit.',
        "import type { ConnectorOf } from 'junction';",
        "import type crmType from '../connectors/crm.js';",
        "import type hooksType from '../connectors/hooks.js';",
        '',
        "declare module 'junction' {",
        '  interface Connectors {',
        '    crm: ConnectorOf<typeof crmType>;',
        '    events: ConnectorOf<typeof hooksType>;',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    expect(await tsc(dir)).toEqual({ code: 0, stdout: '', stderr: '' });

    // The typing is real: a misspelt method and a wrong argument type are compile errors.
    const typo = path.join(dir, 'resolvers/typo.ts');
    writeFileSync(
      typo,
      `import type { HubContext } from 'junction';

export default {
  Query: {
    account: (_: unknown, __: unknown, ctx: HubContext) => ctx.connectors.crm.findAcount(1),
    status: (_: unknown, __: unknown, ctx: HubContext) => ctx.connectors.crm.findAccount(1).then(String),
  },
};
`,
    );
    try {
      const failed = await tsc(dir);
      expect(failed.stdout).toBe(
        [
          "resolvers/typo.ts(5,79): error TS2551: Property 'findAcount' does not exist on type 'CrmConnector'. Did you mean 'findAccount'?",
          "resolvers/typo.ts(6,90): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'.",
          '',
        ].join('\n'),
      );
      expect(failed.code).toBe(2);
    } finally {
      rmSync(typo);
    }
  });

  it('junction check accepts the project', async () => {
    const r = await runCli(['check'], { cwd: dir, env: env() });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^ok: junction\.config\.yaml is valid; the schema has \d+ types; 2 connectors configured\n$/);
    expect(r.code).toBe(0);
  });

  describe('junction serve', () => {
    let hub: Served;

    beforeAll(async () => {
      hub = await serve(dir, env());
    });

    it('batches the directive\'s 50 account loads into ONE upstream call, with the bearer token', async () => {
      upstream.requests.length = 0;
      const r = await gql(hub.url, ORDERS);
      expect(r.body.errors).toBeUndefined();
      const orders = r.body.data!.orders as { id: string; account: { name: string } }[];
      expect(orders).toHaveLength(50);
      orders.forEach((order, i) => expect(order).toEqual({ id: String(i + 1), account: { name: `Account ${(i % 10) + 1}` } }));
      expect(upstream.requests.map((q) => q.url)).toEqual([`/accounts?${Array.from({ length: 10 }, (_, i) => `id=${i + 1}`).join('&')}`]);
      expect(upstream.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    });

    it('answers the typed code resolver through the same connector', async () => {
      upstream.requests.length = 0;
      expect((await gql(hub.url, '{ account(id: "3") { id name } missing: account(id: "99") { id } }')).body).toEqual({
        data: { account: { id: '3', name: 'Account 3' }, missing: null },
      });
      // Both loads of the tick, one call.
      expect(upstream.requests.map((q) => q.url)).toEqual(['/accounts?id=3&id=99']);
    });

    it('shows the connector in the hub API, /readyz and /metrics, with its type', async () => {
      const status = await gql(hub.url, '{ hub { connector(name: "crm") { name type required healthy requests failures breaker { state } } } }');
      expect(status.body).toEqual({
        data: { hub: { connector: { name: 'crm', type: 'crm', required: true, healthy: true, requests: 2, failures: 0, breaker: { state: 'CLOSED' } } } },
      });
      const tested = await gql(hub.url, 'mutation { testConnector(name: "crm") { name ok error } }');
      expect(tested.body).toEqual({ data: { testConnector: { name: 'crm', ok: true, error: null } } });
      expect(upstream.to('/health')).toHaveLength(1);

      const ready = await fetch(`${hub.origin}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', connectors: expect.arrayContaining([{ name: 'crm', type: 'crm', required: true, healthy: true, lastError: null }]) });

      const metrics = await (await fetch(`${hub.origin}/metrics`)).text();
      expect(metrics).toContain('junction_connector_requests_total{connector="crm",outcome="success"} 2\n');
      expect(metrics).toContain('junction_connector_breaker_state{connector="crm"} 0\n');
      // Two batches: the 10 distinct accounts of the 50 orders, then 2 ids.
      expect(metrics).toContain('junction_dataloader_batch_size_sum{connector="crm",field="crm.findAccount"} 12\n');
      expect(metrics).toContain('junction_dataloader_batch_size_count{connector="crm",field="crm.findAccount"} 2\n');
      expect(metrics).not.toContain(TOKEN);
    });

    it('opens the breaker when the CRM fails: CIRCUIT_OPEN for its fields, the rest still answers; /readyz 503; resetBreaker closes it', async () => {
      crmDown = true;
      try {
        const first = await gql(hub.url, ORDERS);
        expect(first.body.data).toMatchObject({ status: 'ok' });
        expect((first.body.data!.orders as unknown[]).length).toBe(50);
        expect(first.body.errors?.[0]).toMatchObject({
          message: `GET ${upstream.url}/accounts answered 500`,
          path: ['orders', 0, 'account'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'crm', status: 500 },
        });
        expect(codes(first)).toEqual(['UPSTREAM_ERROR']);

        // Queries go on failing until the breaker opens (volumeThreshold 2, 50 % over the window).
        let open: GraphQLResponse | undefined;
        for (let i = 0; i < 20 && !open; i++) {
          const r = await gql(hub.url, ORDERS);
          if (codes(r).includes('CIRCUIT_OPEN')) open = r;
        }
        expect(open, 'the breaker never opened').toBeDefined();
        const calls = accountCalls().length;
        // Once open, calls are not made: the fields fail at once, the sibling field answers.
        const r = await gql(hub.url, ORDERS);
        expect(accountCalls()).toHaveLength(calls);
        expect(r.body.data!.status).toBe('ok');
        expect(r.body.data!.orders).toEqual(Array.from({ length: 50 }, (_, i) => ({ id: String(i + 1), account: null })));
        expect(r.body.errors).toHaveLength(50);
        expect(r.body.errors?.[0]).toEqual({
          message: 'crm is failing; its circuit breaker is open and the call was not made',
          locations: [{ line: 1, column: 15 }],
          path: ['orders', 0, 'account'],
          extensions: { code: 'CIRCUIT_OPEN', connector: 'crm' },
        });
        expect(codes(r)).toEqual(['CIRCUIT_OPEN']);

        const status = await gql(hub.url, '{ hub { connector(name: "crm") { type healthy breaker { state } lastError } } }');
        expect(status.body.data).toEqual({
          hub: { connector: { type: 'crm', healthy: false, breaker: { state: 'OPEN' }, lastError: `GET ${upstream.url}/accounts answered 500` } },
        });
        const ready = await fetch(`${hub.origin}/readyz`);
        expect(ready.status).toBe(503);
        expect(await ready.json()).toMatchObject({ status: 'not ready', connectors: expect.arrayContaining([expect.objectContaining({ name: 'crm', healthy: false })]) });
        const metrics = await (await fetch(`${hub.origin}/metrics`)).text();
        expect(metrics).toContain('junction_connector_breaker_state{connector="crm"} 2\n');
        expect(metrics).toMatch(/^junction_connector_requests_total\{connector="crm",outcome="circuit_open"\} [1-9]\d*$/m);
        expect(metrics).toMatch(/^junction_connector_requests_total\{connector="crm",outcome="error"\} [1-9]\d*$/m);
        expect(metrics).not.toContain(TOKEN);
        expect(hub.lines).toContainEqual(expect.objectContaining({ level: 40, connector: 'crm', breaker: 'OPEN', msg: 'circuit breaker open' }));
      } finally {
        crmDown = false;
      }

      expect((await gql(hub.url, 'mutation { resetBreaker(name: "crm") { state } }')).body).toEqual({ data: { resetBreaker: { state: 'CLOSED' } } });
      expect((await fetch(`${hub.origin}/readyz`)).status).toBe(200);
      expect((await gql(hub.url, '{ account(id: "7") { name } }')).body).toEqual({ data: { account: { name: 'Account 7' } } });
    });

    it('serves a connector\'s inbound route at POST /webhooks/<name>, raw body within its limit', async () => {
      const post = (name: string, body: string) => fetch(`${hub.origin}/webhooks/${name}`, { method: 'POST', body });
      const accepted = await post('events', '{"event":"account.updated"}');
      expect(accepted.status).toBe(202);
      expect(accepted.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await accepted.json()).toEqual({ bytes: 27 });

      const tooLarge = await post('events', 'x'.repeat(65));
      expect(tooLarge.status).toBe(413);
      expect(await tooLarge.json()).toEqual({ error: 'body over the limit of 64 bytes' });
      const exactly = await post('events', 'x'.repeat(64));
      expect(exactly.status).toBe(202);
      expect(await exactly.json()).toEqual({ bytes: 64 });

      const get = await fetch(`${hub.origin}/webhooks/events`);
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
      expect(await get.json()).toEqual({ error: 'method not allowed; send POST' });

      const unknown = await post('nobody', '{}');
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toEqual({ error: 'no connector named "nobody" receives webhooks here' });
      // A connector without an inbound route has none.
      expect((await post('crm', '{}')).status).toBe(404);
    });

    it('exits 0 on SIGTERM, and the token was never shown', async () => {
      hub.child.kill('SIGTERM');
      expect(await hub.exited).toEqual({ code: 0, signal: null });
      expect(hub.lines.at(-1)).toMatchObject({ msg: 'stopped' });
      expect(hub.stderr()).toBe('');
      expect(hub.stdout()).not.toContain(TOKEN);
      // The debug log did see the failures and retries, scrubbed.
      expect(hub.lines.some((l) => l.msg === 'retrying' && l.connector === 'crm')).toBe(true);
      // Every API call carried it.
      expect(accountCalls().every((q) => q.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    });
  });
});

// ---- what a bad connectorTypes entry gets --------------------------------------------------------

const GOOD_TYPE = (type: string, directive = type) => `import { BaseConnector, connectorConfig, defineConnectorType, httpUrl } from 'junction';

class Crm extends BaseConnector {
  protected async ping(): Promise<void> {}
}

export default defineConnectorType({
  type: '${type}',
  schema: connectorConfig({ baseUrl: httpUrl() }),
  create: (name, config, deps) => new Crm(name, config, deps),
  directives: [{ name: '${directive}', sdl: 'directive @${directive}(connector: String!) on FIELD_DEFINITION', bind: () => ({}) }],
});
`;

describe('junction check refuses a bad connectorTypes entry: exit 2, naming the key, the file and why', () => {
  const cases: { what: string; types: string; connector?: string; files?: Record<string, string>; expected: string }[] = [
    {
      what: 'a module path that does not exist',
      types: 'crm: ./connectors/nope.ts',
      expected: 'junction.config.yaml: connectorTypes.crm: ./connectors/nope.ts: module not found',
    },
    {
      what: 'a module without a default export',
      types: 'crm: ./connectors/crm.ts',
      files: { 'connectors/crm.ts': "export const type = 'crm';\n" },
      expected: 'junction.config.yaml: connectorTypes.crm: ./connectors/crm.ts: has no default export; export default defineConnectorType({ … })',
    },
    {
      what: 'a default export that is not defineConnectorType(…)',
      types: 'crm: ./connectors/crm.ts',
      files: { 'connectors/crm.ts': "export default { type: 'crm', schema: {}, create: () => ({}) };\n" },
      expected:
        'junction.config.yaml: connectorTypes.crm: ./connectors/crm.ts: its default export is not a connector type; export default defineConnectorType({ … })',
    },
    {
      what: 'the name of a built-in type',
      types: 'http: ./connectors/crm.ts',
      files: { 'connectors/crm.ts': GOOD_TYPE('http', 'crm') },
      expected: 'junction.config.yaml: connectorTypes.http: ./connectors/crm.ts: "http" is a built-in connector type; give yours another name',
    },
    {
      what: 'a key that is not the type the module defines',
      types: 'crm: ./connectors/crm.ts',
      files: { 'connectors/crm.ts': GOOD_TYPE('sales') },
      expected: 'junction.config.yaml: connectorTypes.crm: ./connectors/crm.ts: defines connector type "sales", not "crm"; use the same name in both places',
    },
    {
      what: 'a directive another type already defines',
      types: 'crm: ./connectors/crm.ts',
      files: { 'connectors/crm.ts': GOOD_TYPE('crm', 'http') },
      expected: 'junction.config.yaml: connectorTypes.crm: ./connectors/crm.ts: directive @http is already defined by connector type http',
    },
    {
      what: 'a module that throws when imported',
      types: 'crm: ./connectors/crm.ts',
      files: { 'connectors/crm.ts': "throw new Error('CRM_REGION is not set');\nexport default {};\n" },
      expected: 'junction.config.yaml: connectorTypes.crm: ./connectors/crm.ts: cannot load: CRM_REGION is not set',
    },
    {
      what: 'a connector entry of the user type with a bad value (the type\'s own schema, with key paths)',
      types: 'crm: ./connectors/crm.ts',
      connector: 'crm: { type: crm, baseUrl: "ftp://x", timeoutMs: 0, colour: red }',
      files: { 'connectors/crm.ts': GOOD_TYPE('crm') },
      expected: [
        'junction.config.yaml: connectors.crm.timeoutMs: expected a positive integer, got 0',
        'junction.config.yaml: connectors.crm.baseUrl: expected an http:// or https:// URL, got "ftp://x"',
        'junction.config.yaml: connectors.crm.colour: unknown key',
      ].join('\n  '),
    },
  ];

  it.each(cases)('$what', async ({ types, connector, files = {}, expected }) => {
    const dir = userProject({
      'package.json': PACKAGE_JSON,
      'schema/a.graphql': 'type Query { ping: String }\n',
      'junction.config.yaml': `connectorTypes:\n  ${types}\n${connector ? `connectors:\n  ${connector}\n` : ''}`,
      ...files,
    });
    const r = await runCli(['check'], { cwd: dir });
    expect(r.stderr).toBe(`junction: invalid configuration\n  ${expected}\n`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
  });
});
