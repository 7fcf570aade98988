import { parseArgs } from 'node:util';
import { printSchema } from 'graphql';
import { createConnectors } from '../connectors/index.ts';
import { ConfigError, formatProblem, type HubConfig, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { buildSchema, formatSchemaProblem, SchemaError } from './schema.ts';
import { Secrets } from './secrets.ts';
import { Hub } from './server.ts';
import { version } from './version.ts';

/** Exit codes: 0 success, 1 a failure while running, 2 bad usage, config or schema. */
const EXIT_INVALID = 2;

const USAGE = `Usage: junction <command> [options]

Commands:
  serve          Serve the hub (what \`npm start\` runs)
  check          Validate the config and the schema bindings without serving
  print-schema   Print the composed public SDL

Options:
  --config PATH  Config file (default: $JUNCTION_CONFIG, else ./junction.config.yaml)
  --port N       serve: port to listen on (default: $PORT, else server.port, else 4000)
  --federation   print-schema: print the federation subgraph SDL
  --version      Print the version
  --help         Print this help`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        federation: { type: 'boolean' },
        help: { type: 'boolean' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) return print(version);
  if (values.help) return print(USAGE);
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  switch (command) {
    case 'serve':
      return serve(values.config, values.port);
    case 'check':
      return check(values.config);
    case 'print-schema':
      return printComposedSchema(values.config, values.federation ?? false);
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

async function composedSchema(config: HubConfig) {
  return buildSchema({
    schema: config.schema,
    resolvers: config.resolvers,
    baseDir: config.baseDir,
    authEnabled: config.auth !== undefined,
  });
}

async function check(configPath: string | undefined): Promise<number> {
  const config = loadConfig({ configPath });
  const schema = await composedSchema(config);
  const types = Object.keys(schema.getTypeMap()).filter((t) => !t.startsWith('__')).length;
  process.stdout.write(
    `ok: ${config.file} is valid; the schema has ${types} types; ${Object.keys(config.connectors).length} connectors configured\n`,
  );
  return 0;
}

async function printComposedSchema(configPath: string | undefined, federation: boolean): Promise<number> {
  if (federation) throw new UsageError('--federation: this version does not serve a federation subgraph yet');
  const config = loadConfig({ configPath });
  return print(printSchema(await composedSchema(config)));
}

async function serve(configPath: string | undefined, portOption: string | undefined): Promise<number> {
  const config = loadConfig({ configPath });
  const port = parsePort(portOption, '--port') ?? parsePort(process.env.PORT, 'PORT') ?? config.server.port;
  const secrets = Secrets.fromConfig(config);
  const logger = createLogger(config.server.logLevel, secrets);
  const schema = await composedSchema(config);
  const connectors = createConnectors(config.connectors, { logger });
  const hub = new Hub({ config, schema, logger, secrets, connectors });
  const url = await hub.start(port);
  logger.info({ url, config: config.file, version }, `Junction ${version} serving ${url}`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second Ctrl-C means "now"; a repeated SIGTERM (npm relays the one it got) waits.
        if (signal !== 'SIGINT') return;
        logger.warn({ signal }, 'second interrupt: exiting without waiting');
        return resolve(1);
      }
      stopping = true;
      logger.info({ signal }, 'draining: finishing in-flight requests, closing WebSockets');
      hub.stop().then(
        () => {
          logger.info('stopped');
          resolve(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
  });
}

function parsePort(value: string | undefined, where: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${where}: expected a port number (0-65535), got ${JSON.stringify(value)}`);
  }
  return port;
}

main(process.argv.slice(2)).then(
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
    } else {
      process.stderr.write(`junction: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
      return;
    }
    process.exitCode = EXIT_INVALID;
  },
);
