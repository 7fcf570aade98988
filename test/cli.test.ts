// The `junction` command as a user runs it: a real child process (bin/junction.mjs), its exit
// code and the exact text it prints.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { printSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { builtinRegistry } from '../src/connector-registry.ts';
import { buildSchema } from '../src/schema.ts';
import { type CliResult, project, ROOT, runCli } from './helpers.ts';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** A small valid project: one type, one resolver module. */
const VALID: Record<string, string> = {
  'junction.config.yaml': 'server:\n  port: 4000\n',
  'schema/greeting.graphql': 'type Query {\n  "Says hi."\n  greeting(name: String = "you"): String!\n}\n',
  'resolvers/greeting.ts': "export default { Query: { greeting: (_: unknown, { name }: { name: string }) => `hi ${name}` } };\n",
};

// Temporary project folders, removed once the file is done.
const removers: (() => void)[] = [];
afterAll(() => {
  for (const remove of removers.splice(0)) remove();
});

/** A temporary copy of VALID with some files replaced (or removed, with `null`). */
function temp(files: Record<string, string | null> = {}): string {
  const merged: Record<string, string> = { ...VALID };
  for (const [name, text] of Object.entries(files)) {
    if (text === null) delete merged[name];
    else merged[name] = text;
  }
  const { dir, remove } = project(merged);
  removers.push(remove);
  return dir;
}

function junction(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { cwd, env });
}

/** `junction check` in a project whose junction.config.yaml is `config`. */
function checkConfig(config: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return junction(['check'], temp({ 'junction.config.yaml': config }), env);
}

function invalidConfig(...lines: string[]): string {
  return `junction: invalid configuration\n${lines.map((l) => `  ${l}\n`).join('')}`;
}

function invalidSchema(...lines: string[]): string {
  return `junction: invalid schema\n${lines.map((l) => `  ${l}\n`).join('')}`;
}

/** The number of types `check` reports, from the same schema built in this process. */
async function typeCount(dir: string): Promise<number> {
  const config = await loadConfig({ cwd: dir, env: {} });
  const schema = await buildSchema({ schema: config.schema, resolvers: config.resolvers, baseDir: config.baseDir, authEnabled: false, registry: config.registry });
  return Object.keys(schema.getTypeMap()).filter((t) => !t.startsWith('__')).length;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on the port (either loopback family). */
async function listening(port: number): Promise<boolean> {
  const tryHost = (host: string) =>
    new Promise<boolean>((resolve) => {
      const socket = connect({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  return (await tryHost('127.0.0.1')) || (await tryHost('::1'));
}

let USAGE: string;
beforeAll(async () => {
  const help = await junction(['--help'], ROOT);
  expect(help).toMatchObject({ code: 0, stderr: '' });
  USAGE = help.stdout;
});

describe('junction check', () => {
  it('accepts a valid project: exit 0, one "ok" line naming the file', async () => {
    const dir = temp();
    const result = await junction(['check'], dir);
    expect(result).toEqual({
      code: 0,
      signal: null,
      stdout: `ok: junction.config.yaml is valid; the schema has ${await typeCount(dir)} types; 0 connectors configured\n`,
      stderr: '',
    });
  });

  it("accepts this repository's own config (the demo)", async () => {
    const result = await junction(['check'], ROOT);
    expect(result).toEqual({
      code: 0,
      signal: null,
      stdout: `ok: junction.config.yaml is valid; the schema has ${await typeCount(ROOT)} types; 4 connectors configured\n`,
      stderr: '',
    });
  });

  it('says so when there is no config file and the defaults are used', async () => {
    const dir = temp({ 'junction.config.yaml': null });
    const result = await junction(['check'], dir);
    expect(result.stdout).toBe(`ok: no config file, the defaults are valid; the schema has ${await typeCount(dir)} types; 0 connectors configured\n`);
    expect(result.code).toBe(0);
  });

  it('reads --config and JUNCTION_CONFIG, and names the file it checked', async () => {
    const dir = temp({ 'junction.config.yaml': null, 'conf/hub.yaml': 'schema: ../schema/**/*.graphql\nresolvers: ../resolvers/**/*\n' });
    const count = await typeCount(dir);
    const viaOption = await junction(['check', '--config', 'conf/hub.yaml'], dir);
    expect(viaOption).toMatchObject({ code: 0, stderr: '', stdout: `ok: conf/hub.yaml is valid; the schema has ${count} types; 0 connectors configured\n` });
    const viaEnv = await junction(['check'], dir, { JUNCTION_CONFIG: 'conf/hub.yaml' });
    expect(viaEnv).toMatchObject({ code: 0, stderr: '', stdout: `ok: conf/hub.yaml is valid; the schema has ${count} types; 0 connectors configured\n` });
  });
});

describe('invalid configuration: exit 2, every problem with its key path', () => {
  it('a value of the wrong type', async () => {
    const result = await checkConfig('server:\n  port: "abc"\n');
    expect(result).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: invalidConfig('junction.config.yaml: server.port: expected a port number (0-65535), got "abc"'),
    });
  });

  it('a port out of range', async () => {
    const result = await checkConfig('server:\n  port: 70000\n');
    expect(result.stderr).toBe(invalidConfig('junction.config.yaml: server.port: expected a port number (0-65535), got 70000'));
    expect(result.code).toBe(2);
  });

  it('an unknown key, with its full key path', async () => {
    const result = await checkConfig('server:\n  limits:\n    dpeth: 5\n');
    expect(result.stderr).toBe(invalidConfig('junction.config.yaml: server.limits.dpeth: unknown key'));
    expect(result.code).toBe(2);
  });

  it('a negative server.limits.depth', async () => {
    const result = await checkConfig('server:\n  limits:\n    depth: -3\n');
    expect(result.stderr).toBe(invalidConfig('junction.config.yaml: server.limits.depth: expected a positive integer, got -3'));
    expect(result.code).toBe(2);
  });

  it('a section that is not a mapping', async () => {
    const result = await checkConfig('server: 5\n');
    expect(result.stderr).toBe(invalidConfig('junction.config.yaml: server: expected a mapping of keys to values, got 5'));
    expect(result.code).toBe(2);
  });

  it('a file that is a list, not a mapping', async () => {
    const result = await checkConfig('- server\n');
    expect(result.stderr).toBe(invalidConfig('junction.config.yaml: expected a mapping of keys to values, got ["server"]'));
    expect(result.code).toBe(2);
  });

  it('lists several problems in one file, all of them', async () => {
    const result = await checkConfig('severs: {}\nserver:\n  port: 70000\n  graphiql: "yes"\n  logLevel: loud\n');
    expect(result.stderr).toBe(
      invalidConfig(
        'junction.config.yaml: server.port: expected a port number (0-65535), got 70000',
        'junction.config.yaml: server.graphiql: expected true or false, got "yes"',
        'junction.config.yaml: server.logLevel: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
        'junction.config.yaml: severs: unknown key',
      ),
    );
    expect(result.code).toBe(2);
  });

  it('a ${VAR} whose variable is not set: names the key path and the variable', async () => {
    const result = await checkConfig('server:\n  host: ${JUNCTION_TEST_HOST}\n');
    expect(result.stderr).toBe(
      invalidConfig(
        'junction.config.yaml: server.host: environment variable JUNCTION_TEST_HOST is not set (write ${JUNCTION_TEST_HOST:-default} for a default)',
      ),
    );
    expect(result.code).toBe(2);
  });

  it('${VAR:-default} takes the default when unset, the variable when set, typed like YAML', async () => {
    const config = 'server:\n  limits:\n    depth: ${JUNCTION_TEST_DEPTH:-7}\n';
    // "7" would fail (expected a positive integer): a whole-value placeholder becomes the number 7.
    expect(await checkConfig(config)).toMatchObject({ code: 0, stderr: '' });
    expect(await checkConfig(config, { JUNCTION_TEST_DEPTH: '9' })).toMatchObject({ code: 0, stderr: '' });
    const fromEnv = await checkConfig(config, { JUNCTION_TEST_DEPTH: '0' });
    expect(fromEnv.stderr).toBe(invalidConfig('junction.config.yaml: server.limits.depth: expected a positive integer, got 0'));
    expect(fromEnv.code).toBe(2);
    const badDefault = await checkConfig('server:\n  limits:\n    depth: ${JUNCTION_TEST_DEPTH:-deep}\n');
    expect(badDefault.stderr).toBe(invalidConfig('junction.config.yaml: server.limits.depth: expected a positive integer, got "deep"'));
  });

  it('invalid YAML: file:line:column and the parser\'s reason', async () => {
    const result = await checkConfig('server:\n  port: 4000\n  host: a: b\n');
    expect(result).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: invalidConfig('junction.config.yaml:3:9: invalid YAML: Nested mappings are not allowed in compact mappings'),
    });
  });

  it('--config or JUNCTION_CONFIG naming a file that does not exist', async () => {
    const dir = temp();
    const viaOption = await junction(['check', '--config', 'nope/hub.yaml'], dir);
    expect(viaOption).toEqual({ code: 2, signal: null, stdout: '', stderr: invalidConfig('nope/hub.yaml: file not found') });
    const viaEnv = await junction(['check'], dir, { JUNCTION_CONFIG: 'missing.yaml' });
    expect(viaEnv).toEqual({ code: 2, signal: null, stdout: '', stderr: invalidConfig('missing.yaml: file not found') });
  });

  it('--config naming a folder', async () => {
    const dir = temp();
    const result = await junction(['check', '--config', 'schema'], dir);
    expect(result).toEqual({ code: 2, signal: null, stdout: '', stderr: invalidConfig('schema: cannot read: is a folder, not a file') });
  });

  it('an unknown connector type', async () => {
    const result = await checkConfig('connectors:\n  crm:\n    type: soap\n');
    expect(result.stderr).toBe(
      invalidConfig(
        `junction.config.yaml: connectors.crm.type: unknown connector type (known: ${builtinRegistry.names.join(', ')}; add your own under connectorTypes), got "soap"`,
      ),
    );
    expect(result.code).toBe(2);
  });

  it('a connector name that is not an identifier', async () => {
    const result = await checkConfig('connectors:\n  my-crm:\n    type: http\n');
    expect(result.stderr).toBe(
      invalidConfig('junction.config.yaml: connectors.my-crm: expected a connector name of letters, digits and _, not starting with a digit, got "my-crm"'),
    );
    expect(result.code).toBe(2);
  });

  it('never prints a secret that fails validation: [REDACTED] in its place', async () => {
    const secret = await checkConfig('auth:\n  jwt:\n    secret: 918273645\n');
    expect(secret.stderr).toBe(invalidConfig('junction.config.yaml: auth.jwt.secret: expected a secret, got [REDACTED]'));
    expect(secret.stderr).not.toContain('918273645');
    expect(secret.code).toBe(2);

    const other = await checkConfig('auth:\n  jwt:\n    secret: s3cr3t-hunter2\n    jwksUrl: "not a url s3cr3t-hunter2"\n');
    expect(other.stderr).toBe(
      invalidConfig(
        'junction.config.yaml: auth.jwt.jwksUrl: expected a URL, got [REDACTED]',
        'junction.config.yaml: auth.jwt: expected exactly one of secret, publicKey, jwksUrl, got secret and jwksUrl',
      ),
    );
    expect(other.stderr).not.toContain('hunter2');
    expect(other.code).toBe(2);
  });

  it('a secret taken from the environment is not printed either', async () => {
    const result = await checkConfig('auth:\n  jwt:\n    secret: ${JUNCTION_TEST_SECRET}\n    publicKey: ${JUNCTION_TEST_SECRET}\n', {
      JUNCTION_TEST_SECRET: 'env-s3cr3t-value',
    });
    expect(result.stderr).toBe(
      invalidConfig('junction.config.yaml: auth.jwt: expected exactly one of secret, publicKey, jwksUrl, got secret and publicKey'),
    );
    expect(result.stderr).not.toContain('env-s3cr3t-value');
  });
});

/** Four broken projects, each with the exact problem lines `check` and `serve` print. */
const BAD_SCHEMAS: { name: string; files: Record<string, string>; problems: string[] }[] = [
  {
    name: 'an SDL syntax error',
    files: { 'schema/greeting.graphql': 'type Query {\n  greeting: String!\n  farewell String!\n}\n' },
    problems: ['schema/greeting.graphql:3:12: Syntax Error: Expected ":", found Name "String".'],
  },
  {
    name: 'an unknown type used in a field',
    files: { 'schema/greeting.graphql': 'type Query {\n  greeting: String!\n  widget: Widget\n}\n' },
    problems: ['schema/greeting.graphql:3:11: Unknown type "Widget".'],
  },
  {
    name: 'a resolver for a field the schema does not have',
    files: { 'resolvers/greeting.ts': "export default { Query: { greeting: () => 'hi', farewell: () => 'bye' } };\n" },
    problems: ['resolvers/greeting.ts: resolver for Query.farewell, but type Query has no field "farewell"'],
  },
  {
    name: 'a resolver module without a default export',
    files: { 'resolvers/greeting.ts': "export const resolvers = { Query: { greeting: () => 'hi' } };\n" },
    problems: ['resolvers/greeting.ts: expected a default export of a resolver map (an object)'],
  },
];

describe('invalid schema: exit 2, file:line:column and the reason', () => {
  it.each(BAD_SCHEMAS)('check: $name', async ({ files, problems }) => {
    const result = await junction(['check'], temp(files));
    expect(result).toEqual({ code: 2, signal: null, stdout: '', stderr: invalidSchema(...problems) });
  });

  it.each(BAD_SCHEMAS)('serve: $name stops start-up, nothing listens', async ({ files, problems }) => {
    const port = await freePort();
    const result = await junction(['serve', '--port', String(port)], temp(files));
    expect(result).toEqual({ code: 2, signal: null, stdout: '', stderr: invalidSchema(...problems) });
    expect(await listening(port)).toBe(false);
  });

  it('check: SQL that SQLite cannot prepare, against the seed when the database does not exist yet', async () => {
    const dir = temp({
      'junction.config.yaml': 'connectors:\n  db:\n    type: sql\n    url: sqlite:data/app.db\n    seed: seed.sql\n',
      'seed.sql': 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n',
      'schema/greeting.graphql':
        'type Item { id: ID! name: String! }\ntype Query {\n  items: [Item!] @sql(connector: "db", query: "SELECT * FROM items")\n  bad: [Item!] @sql(connector: "db", query: "SELECT * FROM itemz WHERE id = :args.id")\n}\n',
      'resolvers/greeting.ts': null,
    });
    const result = await junction(['check'], dir);
    expect(result).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: invalidSchema(
        'schema/greeting.graphql:4:3: Query.bad @sql: :args.id names an argument the field does not have (arguments: none)',
      ),
    });
    // Checking created nothing: the database is made by the first start.
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
    writeFileSync(path.join(dir, 'schema/greeting.graphql'), 'type Item { id: ID! name: String! }\ntype Query {\n  items: [Item!] @sql(connector: "db", query: "SELECT * FROM items")\n  bad: [Item!] @sql(connector: "db", query: "SELECT * FROM itemz")\n}\n');
    expect((await junction(['check'], dir)).stderr).toBe(
      invalidSchema('schema/greeting.graphql:4:3: Query.bad @sql: SQLite cannot prepare "SELECT * FROM itemz": no such table: itemz'),
    );
  });

  it('serve: an invalid config stops start-up too', async () => {
    const port = await freePort();
    const result = await junction(['serve', '--port', String(port)], temp({ 'junction.config.yaml': 'server:\n  limits:\n    depth: 0\n' }));
    expect(result).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: invalidConfig('junction.config.yaml: server.limits.depth: expected a positive integer, got 0'),
    });
    expect(await listening(port)).toBe(false);
  });

  it('lists the problems of several files at once', async () => {
    const result = await junction(
      ['check'],
      temp({
        'schema/other.graphql': 'type Other {\n  id ID!\n}\n',
        'resolvers/other.ts': 'export const other = {};\n',
      }),
    );
    expect(result.stderr).toBe(
      invalidSchema(
        'schema/other.graphql:2:6: Syntax Error: Expected ":", found Name "ID".',
        'resolvers/other.ts: expected a default export of a resolver map (an object)',
      ),
    );
    expect(result.code).toBe(2);
  });

  it('checks resolver bindings once the SDL itself is valid', async () => {
    const result = await junction(
      ['check'],
      temp({
        'schema/other.graphql': 'type Other {\n  id: ID!\n  bad: Nope\n}\n',
        'resolvers/greeting.ts': "export default { Query: { greeting: () => 'hi' }, Ghost: { id: () => 1 } };\n",
      }),
    );
    expect(result.stderr).toBe(invalidSchema('schema/other.graphql:3:8: Unknown type "Nope".'));
    expect(result.code).toBe(2);
  });
});

describe('junction print-schema', () => {
  it('prints the composed SDL: the built-in Hub API and the project\'s types', async () => {
    const dir = temp();
    const config = await loadConfig({ cwd: dir, env: {} });
    const expected = printSchema(
      await buildSchema({ schema: config.schema, resolvers: config.resolvers, baseDir: config.baseDir, authEnabled: false, registry: config.registry }),
    );
    const result = await junction(['print-schema'], dir);
    expect(result).toEqual({ code: 0, signal: null, stdout: `${expected}\n`, stderr: '' });
    expect(result.stdout).toContain('type Hub {\n  version: String!\n');
    expect(result.stdout).toContain('  """Says hi."""\n  greeting(name: String = "you"): String!\n');
  });

  it('prints the demo schema from the repository', async () => {
    const result = await junction(['print-schema'], ROOT);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('type Message {');
    expect(result.stdout).toContain('postMessage(author: String!, text: String!): Message!');
    expect(result.stdout).toContain('type Hub {');
  });

  it('--federation without server.federation: exit 2 and says what to set, without the usage (the usage was right)', async () => {
    const result = await junction(['print-schema', '--federation'], temp());
    expect(result).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: 'junction: print-schema --federation: the hub serves no federation subgraph; set server.federation: true in junction.config.yaml\n',
    });
  });
});

describe('usage', () => {
  it('--help prints the usage, naming every command and option', () => {
    expect(USAGE).toMatch(/^Usage: junction <command> \[options\]\n/);
    for (const word of ['serve', 'check', 'print-schema', 'codegen', '--config PATH', '--port N', '--federation', '--check', '--version', '--help']) {
      expect(USAGE).toContain(`  ${word}`);
    }
  });

  it("--version prints package.json's version", async () => {
    expect(await junction(['--version'], ROOT)).toEqual({ code: 0, signal: null, stdout: `${VERSION}\n`, stderr: '' });
  });

  it.each([
    { args: [], message: 'no command given' },
    { args: ['launch'], message: 'unknown command "launch"' },
    { args: ['check', 'extra'], message: 'unexpected argument "extra"' },
    { args: ['check', '--verbose'], message: 'unknown option "--verbose"' },
    { args: ['serve', '--port'], message: '--port needs a value' },
    { args: ['serve', '--port', 'abc'], message: '--port: expected a port number (0-65535), got "abc"' },
    { args: ['serve', '--port', '70000'], message: '--port: expected a port number (0-65535), got "70000"' },
    { args: ['check', '--port', '4000'], message: '--port applies to serve only' },
    { args: ['serve', '--federation'], message: '--federation applies to print-schema only' },
  ])('junction $args: "$message", exit 2 with the usage', async ({ args, message }) => {
    const result = await junction(args, temp());
    expect(result).toEqual({ code: 2, signal: null, stdout: '', stderr: `junction: ${message}\n\n${USAGE}` });
  });

  it('a bad PORT variable is a usage error too', async () => {
    const result = await junction(['serve'], temp(), { PORT: 'http' });
    expect(result).toEqual({ code: 2, signal: null, stdout: '', stderr: `junction: PORT: expected a port number (0-65535), got "http"\n\n${USAGE}` });
  });
});
