import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { SqlConfig } from '../connectors/sql/connector.ts';
import { ConfigError, formatProblem } from './config-problem.ts';
import type { HubConfig } from './config.ts';
import { formatSchemaProblem, SchemaError } from './schema-problem.ts';
import { version } from './version.ts';

// Each command imports what it needs when it runs: `junction --version` loads no GraphQL, no
// database driver and no HTTP client.
// The hub's own modules are imported before the config, whose connector types may register tsx
// for a project's .ts modules: every import after that goes through tsx's loader thread.
const loadConfig = async (configPath: string | undefined, ...preload: Promise<unknown>[]) => {
  const [{ loadConfig: load }] = await Promise.all([import('./config.ts'), import('./schema.ts'), ...preload]);
  return load({ configPath });
};

/** Exit codes: 0 success, 1 a failure while running, 2 bad usage, config or schema. */
const EXIT_INVALID = 2;

const USAGE = `Usage: junction <command> [options]

Commands:
  serve          Serve the hub (what \`npm start\` runs)
  check          Validate the config and the schema bindings without serving
  print-schema   Print the composed public SDL
  codegen        Write the outputs codegen.yml names: resolver types, the connector map
  introspect sql --connector NAME
                 Print SDL for the tables of a sql connector's database, a starting point to edit

Options:
  --config PATH  Config file (default: $JUNCTION_CONFIG, else ./junction.config.yaml)
  --port N       serve: port to listen on (default: $PORT, else server.port, else 4000)
  --workers N    serve: N hub processes on the port (default 1); needs a shared
                 pubsub and eventLog (redis:// or postgres://)
  --federation   print-schema: print the federation subgraph SDL
  --check        codegen: write nothing; exit 1 when an output is stale
  --connector NAME
                 introspect sql: the connector whose database to read
  --version      Print the version
  --help         Print this help`;

class UsageError extends Error {}
/** Valid usage naming something the config does not have (exit 2), with a one-line message. */
class InvalidError extends Error {}
/** A failure while running, with a message for the user rather than a stack (exit 1). */
class RunError extends Error {}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        workers: { type: 'string' },
        federation: { type: 'boolean' },
        check: { type: 'boolean' },
        connector: { type: 'string' },
        help: { type: 'boolean' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError(parseArgsMessage(error as NodeJS.ErrnoException));
  }
  const { values, positionals } = parsed;
  if (values.version) return print(version);
  if (values.help) return print(USAGE);
  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError('no command given');
  if (!COMMANDS.has(command)) throw new UsageError(`unknown command "${command}"`);
  if (command === 'introspect') {
    if (rest[0] === undefined) throw new UsageError('introspect needs a source: introspect sql --connector NAME');
    if (rest[0] !== 'sql') throw new UsageError(`introspect: unknown source "${rest[0]}" (known: sql)`);
    rest.shift();
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  // An option the command does not use is a mistake, not something to ignore silently.
  if (values.port !== undefined && command !== 'serve') throw new UsageError('--port applies to serve only');
  if (values.workers !== undefined && command !== 'serve') throw new UsageError('--workers applies to serve only');
  if (values.federation && command !== 'print-schema') throw new UsageError('--federation applies to print-schema only');
  if (values.connector !== undefined && command !== 'introspect') throw new UsageError('--connector applies to introspect sql only');
  if (values.check && command !== 'codegen') throw new UsageError('--check applies to codegen only');
  switch (command) {
    case 'serve':
      return serve(values.config, parsePort(values.port, '--port'), parseWorkers(values.workers));
    case 'check':
      return check(values.config);
    case 'codegen':
      return codegen(values.config, values.check ?? false);
    case 'introspect':
      if (!values.connector) throw new UsageError('introspect sql needs --connector NAME');
      return introspectSql(values.config, values.connector);
    default:
      return printComposedSchema(values.config, values.federation ?? false);
  }
}

const COMMANDS = new Set(['serve', 'check', 'print-schema', 'codegen', 'introspect']);

/** node:util parseArgs messages, in the words of this CLI. */
function parseArgsMessage(error: NodeJS.ErrnoException): string {
  const option = /'(--?[^' ]+)/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option "${option ?? error.message}"`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return option ? `${option} needs a value` : error.message;
    default:
      return error.message;
  }
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

async function composedSchema(config: HubConfig, verify = false) {
  const { buildSchema } = await import('./schema.ts');
  return buildSchema({
    schema: config.schema,
    resolvers: config.resolvers,
    baseDir: config.baseDir,
    authEnabled: config.auth !== undefined,
    registry: config.registry,
    connectors: Object.fromEntries(Object.entries(config.connectors).map(([name, c]) => [name, c.type])),
    federation: config.server.federation,
    ...(verify && { verify: config.connectors }),
  });
}

async function check(configPath: string | undefined): Promise<number> {
  const config = await loadConfig(configPath);
  const schema = await composedSchema(config, true);
  const types = Object.keys(schema.getTypeMap()).filter((t) => !t.startsWith('__')).length;
  const what = config.file === '(defaults)' ? 'no config file, the defaults are' : `${config.file} is`;
  const connectors = Object.keys(config.connectors).length;
  process.stdout.write(
    `ok: ${what} valid; the schema has ${types} types; ${connectors} ${connectors === 1 ? 'connector' : 'connectors'} configured\n`,
  );
  for (const warning of productionWarnings(config)) process.stderr.write(`warning: ${warning}\n`);
  return 0;
}

/** What a production deployment of this config leaves open (none outside NODE_ENV=production). */
function productionWarnings(config: HubConfig): string[] {
  if (!config.production) return [];
  const warnings: string[] = [];
  if (!config.auth) {
    warnings.push(
      'NODE_ENV=production and no auth is configured: the management API (hub, testConnector, resetBreaker, connectorStatus) is open to every caller; configure auth (jwt or apiKeys) and give operators the admin role',
    );
  }
  for (const key of ['introspection', 'graphiql', 'suggestions'] as const) {
    if (config.server[key]) warnings.push(`NODE_ENV=production and server.${key} is on: it is off by default in production`);
  }
  return warnings;
}

/** `--federation`: the subgraph SDL, exactly what `_service { sdl }` answers. */
async function printComposedSchema(configPath: string | undefined, federation: boolean): Promise<number> {
  const config = await loadConfig(configPath);
  if (federation && !config.server.federation) {
    const file = config.file === '(defaults)' ? 'junction.config.yaml' : config.file;
    throw new InvalidError(`print-schema --federation: the hub serves no federation subgraph; set server.federation: true in ${file}`);
  }
  const schema = await composedSchema(config);
  if (federation) return print((await import('./federation.ts')).subgraphSdl(schema));
  const { printSchema } = await import('graphql');
  return print(printSchema(schema));
}

/** `junction codegen [--check]`: exit 1 when `--check` finds a stale output. */
async function codegen(configPath: string | undefined, check: boolean): Promise<number> {
  const config = await loadConfig(configPath);
  const { runCodegen } = await import('./codegen.ts');
  const stale = await runCodegen(config, check, (line) => process.stdout.write(`${line}\n`), (line) => process.stderr.write(`${line}\n`));
  return stale > 0 ? 1 : 0;
}

/** `junction introspect sql --connector NAME`: SDL for the tables of the connector's database. */
async function introspectSql(configPath: string | undefined, name: string): Promise<number> {
  const config = await loadConfig(configPath);
  const connectors = config.connectors as Record<string, { type: string }>;
  const sqlNames = Object.keys(connectors).filter((n) => connectors[n]!.type === 'sql');
  const known = `sql connectors: ${sqlNames.join(', ') || 'none'}`;
  const connector = Object.hasOwn(connectors, name) ? connectors[name]! : undefined;
  if (!connector) throw new InvalidError(`no connector "${name}" in ${config.file} (${known})`);
  if (connector.type !== 'sql') throw new InvalidError(`connector "${name}" is of type ${connector.type}, not sql (${known})`);
  const sql = connector as unknown as SqlConfig;
  const { connectorTables, tablesToSdl, UnreachableError } = await import('../connectors/sql/introspect.ts');
  const { Kind, parse } = await import('graphql');
  let found;
  try {
    found = await connectorTables(sql, config.baseDir);
  } catch (error) {
    const { Secrets } = await import('./secrets.ts');
    const secrets = Secrets.fromConfig(config);
    const message = secrets.scrub((error as Error).message.split('\n')[0]!);
    if (error instanceof UnreachableError) throw new RunError(`cannot reach the database of connector "${name}": ${message}`);
    throw new RunError(`cannot introspect the database of connector "${name}": ${message}`);
  }
  // The hub's own types and Query fields are taken: a table named `hub` must not collide with them.
  const builtin = parse(readFileSync(new URL('./hub.graphql', import.meta.url), 'utf8'));
  const reservedTypes = builtin.definitions.flatMap((d) => ('name' in d && d.name ? [d.name.value] : []));
  const reservedFields = builtin.definitions.flatMap((d) =>
    d.kind === Kind.OBJECT_TYPE_DEFINITION && d.name.value === 'Query' ? (d.fields ?? []).map((f) => f.name.value) : [],
  );
  process.stdout.write(
    tablesToSdl(found.tables, { connector: name, dialect: found.dialect, columns: sql.columns, reservedTypes, reservedFields }),
  );
  return 0;
}

async function serve(configPath: string | undefined, portOption: number | undefined, workers: number): Promise<number> {
  const { isWorker } = await import('./workers.ts');
  if (workers > 1 && !isWorker()) return servePrimary(configPath, workers);
  const config = await loadConfig(configPath, import('./server.ts'), import('./logger.ts'), import('./secrets.ts'));
  const port = portOption ?? parsePort(process.env.PORT, 'PORT') ?? config.server.port;
  const [{ Secrets }, { createLogger }, { Hub }, { workerListening, workerMetrics }] = await Promise.all([
    import('./secrets.ts'),
    import('./logger.ts'),
    import('./server.ts'),
    import('./workers.ts'),
  ]);
  const secrets = Secrets.fromConfig(config);
  const logger = createLogger(config.server.logLevel, secrets);
  const schema = await composedSchema(config);
  const worker = isWorker();
  // A worker's warnings are its primary's, said once there.
  if (!worker) for (const warning of productionWarnings(config)) logger.warn(warning);
  const hub = new Hub({ config, schema, logger, secrets, ...(worker && { metricsText: workerMetrics }) });

  // Signal handlers go in before the hub starts: a signal during start-up is held and drains
  // the hub once it is up, instead of killing it half-started.
  let phase: 'starting' | 'serving' | 'stopping' = 'starting';
  let pendingSignal: NodeJS.Signals | undefined;
  let settle: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (settle = resolve));
  const drain = (signal: NodeJS.Signals) => {
    phase = 'stopping';
    logger.info({ signal }, 'draining: finishing in-flight requests, closing WebSockets');
    hub.stop().then(
      () => {
        logger.info('stopped');
        settle(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        settle(1);
      },
    );
  };
  const shutdown = (signal: NodeJS.Signals) => {
    if (phase === 'starting') {
      // Drained as soon as the hub is up; stopping it half-started would leave it listening.
      pendingSignal ??= signal;
      return;
    }
    if (phase === 'stopping') {
      // A second Ctrl-C means "now"; a repeated SIGTERM (npm relays the one it got) waits.
      if (signal !== 'SIGINT') return;
      logger.warn({ signal }, 'second interrupt: exiting without waiting');
      // Settling would still wait for the drain to let go of the event loop.
      logger.flush(() => process.exit(1));
      return;
    }
    drain(signal);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  let url: string;
  try {
    url = await hub.start(port);
  } catch (error) {
    const reason = LISTEN_ERRORS[(error as NodeJS.ErrnoException).code ?? ''];
    if (!reason) throw error;
    const where = config.server.host ? `${config.server.host}:${port}` : `port ${port}`;
    throw new RunError(`cannot listen on ${where}: ${reason}`);
  }
  if (worker) workerListening(url);
  else logger.info({ url, config: config.file, version }, `Junction ${version} serving ${url}`);
  phase = 'serving';
  if (pendingSignal) drain(pendingSignal);
  return exited;
}

/**
 * `serve --workers N`, in the primary process: the config and the schema are checked here (exit
 * 2 as without workers, and for a store the workers cannot share), then src/workers.ts forks
 * the workers, each of which runs `serve` as above.
 */
async function servePrimary(configPath: string | undefined, count: number): Promise<number> {
  const config = await loadConfig(configPath, import('./logger.ts'), import('./secrets.ts'), import('./workers.ts'));
  const [{ Secrets }, { createLogger }, workers] = await Promise.all([import('./secrets.ts'), import('./logger.ts'), import('./workers.ts')]);
  const problems = workers.sharedStoreProblems(config, count);
  if (problems.length > 0) throw new ConfigError(problems);
  await composedSchema(config);
  const logger = createLogger(config.server.logLevel, Secrets.fromConfig(config));
  for (const warning of productionWarnings(config)) logger.warn(warning);
  return workers.superviseWorkers({
    count,
    logger,
    serving: (url) => logger.info({ url, config: config.file, version, workers: count }, `Junction ${version} serving ${url} with ${count} workers`),
  });
}

function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1;
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 256) throw new UsageError(`--workers: expected a number of processes (1-256), got ${JSON.stringify(value)}`);
  return count;
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available',
};

function parsePort(value: string | undefined, where: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${where}: expected a port number (0-65535), got ${JSON.stringify(value)}`);
  }
  return port;
}

main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof ConfigError) {
        process.stderr.write(`junction: invalid configuration\n${error.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`);
      } else if (error instanceof SchemaError) {
        process.stderr.write(`junction: invalid schema\n${error.problems.map((p) => `  ${formatSchemaProblem(p)}`).join('\n')}\n`);
      } else if (error instanceof UsageError) {
        process.stderr.write(`junction: ${error.message}\n\n${USAGE}\n`);
      } else if (error instanceof InvalidError) {
        process.stderr.write(`junction: ${error.message}\n`);
      } else if (error instanceof RunError) {
        process.stderr.write(`junction: ${error.message}\n`);
        process.exitCode = 1;
        return;
      } else {
        process.stderr.write(`junction: ${(error as Error).stack ?? String(error)}\n`);
        process.exitCode = 1;
        return;
      }
      process.exitCode = EXIT_INVALID;
    },
  )
  .finally(leaveCluster);

/**
 * A `serve --workers` worker that is done (its hub stopped, or it could not start) closes its
 * channel to the primary, which would keep it alive; it then exits with its own exit code.
 */
async function leaveCluster(): Promise<void> {
  if (!process.connected) return; // no channel: not a worker (nor a child started with IPC)
  const { default: cluster } = await import('node:cluster');
  cluster.worker?.disconnect();
}
