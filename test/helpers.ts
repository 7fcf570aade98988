import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { buildSchema } from '../src/schema.ts';
import { Secrets } from '../src/secrets.ts';
import { Hub } from '../src/server.ts';
import type { ConsumerStats } from '../src/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A temporary project folder: files by relative path. Removed by the returned function. */
export function project(files: Record<string, string>): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'junction-test-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Makes `import … from 'junction'` work in a temporary project outside the repository, as
 * `npm install <this folder>` would: node_modules/junction links to the package.
 */
export function linkJunction(dir: string): void {
  mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  symlinkSync(ROOT, path.join(dir, 'node_modules/junction'), 'dir');
}

export interface TestHub {
  hub: Hub;
  url: string;
  wsUrl: string;
  origin: string;
  /** Every log line the hub wrote, parsed. */
  logs: Record<string, unknown>[];
  /** The raw log output, to check that no secret reaches it. */
  rawLogs: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts a real hub on a free port of 127.0.0.1 from a temporary project: `files` (SDL under
 * schema/, resolver modules under resolvers/) and `config` (junction.config.yaml's content).
 * Connectors come from `config.connectors`, as in a real project.
 */
export async function startHub(
  files: Record<string, string>,
  config: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<TestHub> {
  const { dir, remove } = project({ ...files, 'junction.config.yaml': stringify(config) });
  const parsed = await parseConfig(
    { ...config, server: { host: '127.0.0.1', port: 0, logLevel: 'debug', ...(config.server as object) } },
    { file: 'junction.config.yaml', baseDir: dir, env },
  );
  const secrets = Secrets.fromConfig(parsed);
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = createLogger(parsed.server.logLevel, secrets, sink);
  const schema = await buildSchema({
    schema: parsed.schema,
    resolvers: parsed.resolvers,
    baseDir: dir,
    authEnabled: parsed.auth !== undefined,
    registry: parsed.registry,
    connectors: typesOf(parsed.connectors),
    federation: parsed.server.federation,
  });
  const hub = new Hub({ config: parsed, schema, logger, secrets });
  const url = await hub.start();
  const origin = new URL(url).origin;
  return {
    hub,
    url,
    origin,
    wsUrl: url.replace(/^http/, 'ws'),
    get logs() {
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    rawLogs: () => text,
    stop: async () => {
      await hub.stop();
      remove();
    },
  };
}

function typesOf(connectors: Record<string, { type: string }>): Record<string, string> {
  return Object.fromEntries(Object.entries(connectors).map(([name, c]) => [name, c.type]));
}

export interface GraphQLResponse {
  status: number;
  headers: Headers;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: Record<string, unknown>; path?: unknown[] }[];
    extensions?: Record<string, unknown>;
  };
}

/** POSTs a GraphQL request over real HTTP. */
export async function gql(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as GraphQLResponse['body'] };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * How long a spawned `junction` may take before a test gives up on it: generous, so the suite
 * holds on a 2-core machine kept busy by something else. Tests assert what the process says,
 * never how fast it said it.
 */
export const SPAWN_TIMEOUT_MS = 60_000;

/** Runs the real `junction` command (bin/junction.mjs) to completion. */
export function runCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/junction.mjs'), ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`junction ${args.join(' ')} did not exit in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? SPAWN_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Waits until `check` holds, polling every 25 ms; fails with `what` after a generous while (30 s by default). */
export async function until(check: () => boolean | Promise<boolean>, what: string, tries = 1200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A queue connector's health and consumer state, as `hub { connector(name:) }` answers it. */
export interface ConsumerStatus {
  type: string;
  healthy: boolean;
  lastError: string | null;
  consumer: ConsumerStats;
}

export async function consumerStatus(url: string, name: string): Promise<ConsumerStatus> {
  const res = await gql(
    url,
    `query($name: String!) { hub { connector(name: $name) { type healthy lastError
      consumer { connected received stored duplicates redelivered deadLettered lag lastEventAt } } } }`,
    { name },
  );
  if (res.body.errors) throw new Error(`hub { connector(name: "${name}") } failed: ${JSON.stringify(res.body.errors)}`);
  return (res.body.data!.hub as { connector: ConsumerStatus }).connector;
}

/** One stored event as `Query.events` answers it. */
export interface EventNode {
  id: string;
  type: string;
  deliveryId: string;
  payload: unknown;
}

/** Every event of a source, oldest first, paging through `Query.events` 1,000 at a time. */
export async function storedEvents(url: string, source: string): Promise<EventNode[]> {
  const all: EventNode[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await gql(
      url,
      'query($s: String!, $a: ID) { events(source: $s, after: $a, first: 1000) { edges { node { id type deliveryId payload } } pageInfo { hasNextPage } } }',
      { s: source, a: after },
    );
    if (res.body.errors) throw new Error(`events(source: "${source}") failed: ${JSON.stringify(res.body.errors)}`);
    const page = res.body.data!.events as { edges: { node: EventNode }[]; pageInfo: { hasNextPage: boolean } };
    all.push(...page.edges.map((e) => e.node));
    if (!page.pageInfo.hasNextPage || page.edges.length === 0) return all;
    after = page.edges.at(-1)!.node.id;
  }
}
