/**
 * The demo as `npm start` serves it (dist/demo/start.js: the demo's REST data served locally,
 * then the real CLI), asked over real HTTP with no network and a minimal environment; and the
 * demo's own connector type `files` (demo/connectors/files.ts, written against the public API
 * only), in hubs of temporary projects: paths confined to the root, errors and their codes.
 * The spawned part needs `npm run build` first (the test suite's `npm test` runs it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config-problem.ts';
import { parseConfig } from '../src/config.ts';
import { SchemaError } from '../src/schema-problem.ts';
import { gql, project, ROOT, runCli, SPAWN_TIMEOUT_MS, startHub, type TestHub } from './helpers.ts';

const FILES_TYPE = path.join(ROOT, 'demo/connectors/files.ts');

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const removers: (() => void)[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const remove of removers.splice(0)) remove();
});

/** `npm start` as its script runs it, on a port the OS picks, with only PATH and HOME. */
function startDemo(): Promise<Started> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/demo/start.js')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const output = () => `stdout: ${stdout}\nstderr: ${stderr}`;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not serve within ${SPAWN_TIMEOUT_MS} ms\n${output()}`)), SPAWN_TIMEOUT_MS);
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const line of stdout.split('\n')) {
        let parsed: { msg?: unknown; url?: unknown };
        try {
          parsed = JSON.parse(line) as typeof parsed;
        } catch {
          continue;
        }
        if (typeof parsed.msg === 'string' && parsed.msg.includes(' serving ') && typeof parsed.url === 'string') {
          clearTimeout(timer);
          // The line names localhost; ask over IPv4 like the rest of the suite.
          const url = new URL(parsed.url);
          url.hostname = '127.0.0.1';
          resolve({ child, url: url.href, output, exited });
          return;
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${signal ?? code}) before serving\n${output()}`));
    });
  });
}

describe('the demo (`npm start`: node dist/demo/start.js), with no network', () => {
  it('answers its README queries from local data, files included, and drains on SIGTERM', async () => {
    const demo = await startDemo();
    const { url } = demo;

    // The REST part: jsonplaceholder's data served locally by the start script.
    const data = JSON.parse(readFileSync(path.join(ROOT, 'demo/data/jsonplaceholder.json'), 'utf8')) as {
      posts: { id: number; userId: number; title: string }[];
      users: { id: number; name: string }[];
    };
    const names = new Map(data.users.map((u) => [u.id, u.name]));
    const posts = await gql(url, '{ posts { id title user { name } } }');
    expect(posts.body.errors, demo.output()).toBeUndefined();
    expect(posts.body.data?.posts).toEqual(data.posts.map((p) => ({ id: String(p.id), title: p.title, user: { name: names.get(p.userId) } })));
    expect(posts.body.data?.posts).toHaveLength(100);
    expect((posts.body.data?.posts as unknown[])[0]).toEqual({
      id: '1',
      title: 'sunt aut facere repellat provident occaecati excepturi optio reprehenderit',
      user: { name: 'Leanne Graham' },
    });

    // The files connector: a folder's listing, a CSV file's rows typed (numbers are numbers),
    // a JSON file, a text file, and a code resolver over context.connectors.docs.
    const files = await gql(
      url,
      `{
        files { name path size kind }
        notes: files(folder: "notes") { name path kind }
        catalog { sku name priceCents stock category }
        catalogItem(sku: "MN-005") { sku name priceCents stock }
        team { name role email since }
        readme: file(path: "README.txt")
      }`,
    );
    expect(files.body.errors).toBeUndefined();
    expect(files.body.data).toEqual({
      files: [
        { name: 'README.txt', path: 'README.txt', size: 152, kind: 'file' },
        { name: 'notes', path: 'notes', size: null, kind: 'folder' },
        { name: 'products.csv', path: 'products.csv', size: 235, kind: 'file' },
        { name: 'team.json', path: 'team.json', size: 283, kind: 'file' },
      ],
      notes: [{ name: 'welcome.md', path: 'notes/welcome.md', kind: 'file' }],
      catalog: [
        { sku: 'KB-001', name: 'Mechanical keyboard', priceCents: 8900, stock: 12, category: 'peripherals' },
        { sku: 'MS-002', name: 'Trackball mouse', priceCents: 4500, stock: 30, category: 'peripherals' },
        { sku: 'DK-003', name: 'USB-C dock', priceCents: 12900, stock: 0, category: 'docks' },
        { sku: 'ST-004', name: 'Laptop stand', priceCents: 3900, stock: 7, category: 'accessories' },
        { sku: 'MN-005', name: '27" monitor', priceCents: 32900, stock: 4, category: 'displays' },
      ],
      catalogItem: { sku: 'MN-005', name: '27" monitor', priceCents: 32900, stock: 4 },
      team: [
        { name: 'Ada Lovelace', role: 'Engineering', email: 'ada@example.com', since: 2019 },
        { name: 'Grace Hopper', role: 'Platform', email: 'grace@example.com', since: 2020 },
        { name: 'Alan Turing', role: 'Data', email: 'alan@example.com', since: 2022 },
      ],
      readme: readFileSync(path.join(ROOT, 'demo/files/README.txt'), 'utf8'),
    });
    const modified = await gql(url, '{ files { modifiedAt } }');
    for (const entry of modified.body.data?.files as { modifiedAt: string }[]) expect(new Date(entry.modifiedAt).toISOString()).toBe(entry.modifiedAt);

    // A path out of the folder fails alone, coded, naming the connector; siblings resolve.
    const escape = await gql(url, '{ file(path: "../package.json") absolute: file(path: "/etc/passwd") catalogItem(sku: "KB-001") { name } hello }');
    expect(escape.body.data).toEqual({ file: null, absolute: null, catalogItem: { name: 'Mechanical keyboard' }, hello: 'Hello World!' });
    expect(escape.body.errors).toHaveLength(2);
    for (const error of escape.body.errors ?? []) {
      expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', connector: 'docs' });
      expect(error.message).not.toContain(ROOT);
    }
    expect(escape.body.errors?.map((e) => e.path)).toEqual(expect.arrayContaining([['file'], ['absolute']]));
    const missing = await gql(url, '{ file(path: "nope.txt") }');
    expect(missing.body.errors?.[0]).toMatchObject({
      message: `no file or folder "nope.txt" under the connector's root`,
      extensions: { code: 'UPSTREAM_ERROR', connector: 'docs', status: 404 },
    });

    // The user's connector type is a connector like the built-in ones.
    const hub = await gql(url, '{ hub { connectors { name type healthy } } }');
    expect(hub.body.data?.hub).toEqual({
      connectors: expect.arrayContaining([
        { name: 'docs', type: 'files', healthy: true },
        { name: 'jsonplaceholder', type: 'http', healthy: true },
        { name: 'shop', type: 'sql', healthy: true },
      ]),
    });

    demo.child.kill('SIGTERM');
    expect(await demo.exited, demo.output()).toEqual({ code: 0, signal: null });
  });

  it('`junction check` accepts the repository config with no DEMO_API_URL set', async () => {
    const result = await runCli(['check'], { cwd: ROOT });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^ok: junction\.config\.yaml is valid; the schema has \d+ types; 4 connectors configured\n$/);
    expect(result.code).toBe(0);
  });
});

describe('the `files` connector type (demo/connectors/files.ts)', () => {
  const SDL = `
    type Entry { name: String! path: String! size: Int kind: String! }
    type Settings { name: String! limits: Limits! }
    type Limits { max: Int! }
    type Row { code: String! qty: Float! note: String }
    type Query {
      list(folder: String): [Entry!] @files(connector: "disk", path: "{args.folder}", format: LIST)
      text(path: String!): String @files(connector: "disk", path: "{args.path}", format: TEXT)
      settings: Settings @files(connector: "disk", path: "settings.json")
      broken: Settings @files(connector: "disk", path: "broken.json")
      rows: [Row!] @files(connector: "disk", path: "rows.csv")
    }
  `;
  /** A folder with a link out of it, a link inside it, a file over maxFileBytes (64). */
  function folder(): string {
    const { dir, remove } = project({
      'root/small.txt': 'small\n',
      'root/big.txt': 'x'.repeat(100),
      'root/settings.json': '{ "name": "demo", "limits": { "max": 3 } }',
      'root/broken.json': '{ "name": ',
      'root/rows.csv': 'code,qty,note\n"007",42,\nA1,1.5,hello\n',
      'outside/secret.txt': 'secret\n',
    });
    removers.push(remove);
    symlinkSync(path.join(dir, 'outside/secret.txt'), path.join(dir, 'root/leak.txt'));
    symlinkSync(path.join(dir, 'outside'), path.join(dir, 'root/out'));
    symlinkSync('small.txt', path.join(dir, 'root/alias.txt'));
    return path.join(dir, 'root');
  }
  const hubs: TestHub[] = [];
  afterAll(async () => {
    for (const hub of hubs.splice(0)) await hub.stop();
  });
  async function hubOn(root: string, extra: Record<string, unknown> = {}): Promise<TestHub> {
    const hub = await startHub(
      { 'schema/a.graphql': SDL },
      { connectorTypes: { files: FILES_TYPE }, connectors: { disk: { type: 'files', root, maxFileBytes: 64, ...extra } } },
    );
    hubs.push(hub);
    return hub;
  }

  it('reads text, JSON and CSV as typed values, and lists a folder with the links that stay inside', async () => {
    const { url } = await hubOn(folder());
    const r = await gql(url, '{ list { name size kind } alias: text(path: "alias.txt") settings { name limits { max } } rows { code qty note } }');
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data).toEqual({
      list: [
        { name: 'alias.txt', size: 6, kind: 'file' },
        { name: 'big.txt', size: 100, kind: 'file' },
        { name: 'broken.json', size: 10, kind: 'file' },
        { name: 'rows.csv', size: 37, kind: 'file' },
        { name: 'settings.json', size: 42, kind: 'file' },
        { name: 'small.txt', size: 6, kind: 'file' },
      ],
      alias: 'small\n',
      settings: { name: 'demo', limits: { max: 3 } },
      // Quoted cells stay text, unquoted numbers are numbers, empty cells null.
      rows: [
        { code: '007', qty: 42, note: null },
        { code: 'A1', qty: 1.5, note: 'hello' },
      ],
    });
  });

  it('never leaves its root: .., absolute paths and links out answer BAD_USER_INPUT; misses do not open the breaker', async () => {
    const root = folder();
    const { url } = await hubOn(root, { breaker: { volumeThreshold: 1, errorThresholdPercentage: 1 } });
    const r = await gql(
      url,
      '{ up: text(path: "../outside/secret.txt") abs: text(path: "/etc/hostname") link: text(path: "leak.txt") dir: list(folder: "out") { name } ok: text(path: "small.txt") }',
    );
    expect(r.body.data).toEqual({ up: null, abs: null, link: null, dir: null, ok: 'small\n' });
    const byField = Object.fromEntries((r.body.errors ?? []).map((e) => [String(e.path?.[0]), e]));
    for (const field of ['up', 'abs', 'link', 'dir']) {
      expect(byField[field]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', connector: 'disk' });
      expect(byField[field]?.message).not.toContain(root);
    }
    expect(byField.link?.message).toBe(`path "leak.txt" leads outside the connector's root (a symbolic link)`);

    const failures = await gql(url, '{ a: text(path: "missing.txt") b: text(path: "big.txt") c: broken { name } d: text(path: "nope/x.txt") e: list(folder: "small.txt") { name } }');
    const codes = Object.fromEntries((failures.body.errors ?? []).map((e) => [String(e.path?.[0]), [e.extensions?.code, e.extensions?.status, e.message]]));
    expect(codes).toEqual({
      a: ['UPSTREAM_ERROR', 404, `no file or folder "missing.txt" under the connector's root`],
      b: ['UPSTREAM_ERROR', 413, `"big.txt" is 100 bytes, over the connector's maxFileBytes (64)`],
      c: ['UPSTREAM_ERROR', undefined, expect.stringMatching(/^"broken\.json" is not valid JSON: /)],
      d: ['UPSTREAM_ERROR', 404, `no file or folder "nope/x.txt" under the connector's root`],
      e: ['UPSTREAM_ERROR', 400, `"small.txt" is a file, not a folder (read it with format TEXT, JSON or CSV)`],
    });
    // None of these is the folder failing: the breaker stays closed and the connector healthy.
    const status = await gql(url, '{ hub { connectors { name type healthy breaker { state } } } }');
    expect(status.body.data?.hub).toEqual({ connectors: [{ name: 'disk', type: 'files', healthy: true, breaker: { state: 'CLOSED' } }] });
  });

  it('is unhealthy, not fatal, when its root is missing; its config and bindings are checked', async () => {
    const { dir, remove } = project({});
    removers.push(remove);
    const gone = await hubOn(path.join(dir, 'missing'));
    const r = await gql(gone.url, '{ text(path: "a.txt") hub { connectors { name healthy lastError } } }');
    expect(r.body.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', connector: 'disk' });
    expect(r.body.data?.hub).toEqual({ connectors: [{ name: 'disk', healthy: false, lastError: expect.stringContaining('cannot be read') }] });

    const config = parseConfig(
      { connectorTypes: { files: FILES_TYPE }, connectors: { disk: { type: 'files', maxFileBytes: -1 } } },
      { file: 'junction.config.yaml', baseDir: dir },
    );
    await expect(config).rejects.toBeInstanceOf(ConfigError);
    const problems = ((await config.catch((e: unknown) => e)) as ConfigError).problems.map((p) => p.path);
    expect(problems).toEqual(expect.arrayContaining(['connectors.disk.root', 'connectors.disk.maxFileBytes']));

    const bad = startHub(
      {
        'schema/a.graphql': `type Query {
          a(path: String): String @files(connector: "disk", path: "{args.file}")
          b: [String] @files(connector: "disk", path: "notes.txt")
          c: String @files(connector: "disk", path: "../x.csv")
        }`,
      },
      { connectorTypes: { files: FILES_TYPE }, connectors: { disk: { type: 'files', root: '.' } } },
    );
    const error = (await bad.catch((e: unknown) => e)) as SchemaError;
    expect(error).toBeInstanceOf(SchemaError);
    const messages = error.problems.map((p) => p.message).join('\n');
    expect(messages).toContain('{args.file} names an argument the field does not have (arguments: path)');
    expect(messages).toContain('format TEXT reads a string; the field\'s type [String] must be a scalar (String)');
    expect(messages).toContain('path "../x.csv" leaves the connector\'s root');
    expect(messages).toContain('format CSV reads a list; the field\'s type String is not one');
  });
});
