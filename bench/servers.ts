import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

/**
 * The processes `npm run bench` measures, each in its own child process: the upstream, the
 * reference Apollo server and the hub (the real CLI, `junction serve`, on a generated project).
 */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Child {
  name: string;
  pid: number;
  /** Where GraphQL (or, for the upstream, the REST API) is served. */
  url: string;
  /** The last 64 KiB the process wrote, for error messages. */
  output: () => string;
  stop: () => Promise<void>;
}

export interface SpawnOptions {
  /** Extra node flags (e.g. --cpu-prof) for the process. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  cleanup?: () => void;
  /** Run the hub of another checkout of this repository (A/B comparisons); default: this one. */
  hubRoot?: string;
  /** The hub's project gets the webhook connector `WEBHOOK` and its event log (the events step). */
  webhook?: boolean;
  /** `junction serve --workers N` (N > 1): pubsub and eventLog on the local Redis, as it needs. */
  workers?: number;
}

/**
 * How a spawned server says it is ready: a line of its stdout that names its URL, or a probe
 * (called every 100 ms) that resolves to the URL once the server answers.
 */
export type Readiness = { line: (line: string) => string | undefined } | { probe: () => Promise<string | undefined> };

/**
 * Spawns `command args…`, waits until it is ready (see Readiness), and keeps draining its output
 * (a full pipe would stall the process under test).
 */
export function spawnServer(name: string, command: string, args: string[], readiness: Readiness, options: SpawnOptions = {}): Promise<Child> {
  const child: ChildProcess = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-65_536);
  };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    options.cleanup?.();
  };
  return new Promise((resolve, reject) => {
    let buffered = '';
    let found = false;
    const timer = setTimeout(() => fail(new Error(`${name} did not start within 60 s`)), 60_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      void stop().then(() => reject(new Error(`${error.message}\n--- ${name} output ---\n${tail}`)));
    };
    const ready = (url: string) => {
      found = true;
      clearTimeout(timer);
      resolve({ name, pid: child.pid!, url, output: () => tail, stop });
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      if (found || !('line' in readiness)) return;
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const url = readiness.line(line);
        if (url === undefined) continue;
        ready(url);
        return;
      }
    });
    child.stderr!.on('data', keep);
    let ended = false;
    child.once('exit', (code, signal) => {
      ended = true;
      if (!found) fail(new Error(`${name} exited (${signal ?? code}) before it was ready`));
    });
    if ('probe' in readiness) {
      const poll = async () => {
        if (found || ended) return;
        const url = await readiness.probe().catch(() => undefined);
        if (url !== undefined && !found && !ended) ready(url);
        else setTimeout(() => void poll(), 100);
      };
      void poll();
    }
  });
}

/** Spawns `node [nodeArgs] args…` (see spawnServer), ready when `ready` finds its URL in a line of its stdout. */
export function spawnNode(name: string, args: string[], ready: (line: string) => string | undefined, options: SpawnOptions = {}): Promise<Child> {
  return spawnServer(name, process.execPath, [...(options.nodeArgs ?? []), ...args], { line: ready }, options);
}

export const TSX = ['--import', 'tsx'];

export function startUpstream(options: SpawnOptions = {}): Promise<Child> {
  return spawnNode('upstream', [...TSX, 'demo/jsonplaceholder.ts', '--port', '0'], (line) => /upstream on (\S+)/.exec(line)?.[1], options);
}

export function startReference(upstreamUrl: string, options: SpawnOptions = {}): Promise<Child> {
  return spawnNode(
    'reference',
    [...TSX, 'bench/reference-server.ts', '--upstream', upstreamUrl, '--port', '0'],
    (line) => /reference server on (\S+)/.exec(line)?.[1],
    options,
  );
}

export type HubMode = 'cache-off' | 'cache-on';

/**
 * The hub's SDL for the workload: the same types as the reference server, the fields bound with
 * `@http` (`user` batched with `batchKey`), and `@cache` on both upstream fields when cache is on.
 * A small message board gives the connection test a subscription.
 */
export function hubSdl(mode: HubMode): string {
  const cache = mode === 'cache-on' ? ' @cache(ttlMs: 60000)' : '';
  return `
type User {
  id: Int!
  name: String!
  username: String!
  email: String!
  phone: String
  website: String
}

type Post {
  id: Int!
  userId: Int!
  title: String!
  body: String!
  user: User @http(connector: "upstream", path: "/users", query: [{ key: "id", value: "{parent.userId}" }], batchKey: "id")${cache}
}

type Message {
  id: Int!
  text: String!
}

extend type Query {
  posts: [Post] @http(connector: "upstream", path: "/posts")${cache}
  greet: String!
}

extend type Mutation {
  postMessage(text: String!): Message!
}

extend type Subscription {
  messagePosted: Message!
}
`;
}

const HUB_RESOLVERS = `// Written by bench/servers.ts.
let last = 0;
export default {
  Query: { greet: () => 'Hello World!' },
  Mutation: {
    postMessage: async (_, { text }, { pubsub }) => {
      const message = { id: ++last, text };
      await pubsub.publish('bench.messagePosted', message);
      return message;
    },
  },
  Subscription: {
    messagePosted: {
      subscribe: (_, __, { pubsub }) => pubsub.asyncIterableIterator('bench.messagePosted'),
      resolve: (message) => message,
    },
  },
};
`;

/** The generated project's webhook connector (scheme hmac): POST /webhooks/<source>. */
export const WEBHOOK = { source: 'bench', secret: 'bench-webhook-secret', header: 'X-Signature', prefix: 'sha256=' } as const;

/** Runs the real CLI, `node bin/junction.mjs serve --config … --port 0`, on a generated project. */
export function startHub(upstreamUrl: string, mode: HubMode, options: SpawnOptions = {}): Promise<Child> {
  const workers = options.workers ?? 1;
  const dir = mkdtempSync(path.join(tmpdir(), `junction-bench-${mode}-`));
  mkdirSync(path.join(dir, 'schema'));
  mkdirSync(path.join(dir, 'resolvers'));
  writeFileSync(path.join(dir, 'schema', 'bench.graphql'), hubSdl(mode));
  writeFileSync(path.join(dir, 'resolvers', 'bench.mjs'), HUB_RESOLVERS);
  const config = {
    // Every bench client connects from 127.0.0.1: the per-IP WebSocket limit (default 100) is
    // raised so that one address can hold the connection tests' 10,000 subscriptions.
    server: { host: '127.0.0.1', port: 0, ws: { maxConnectionsPerIp: 100_000 } },
    schema: 'schema/**/*.graphql',
    resolvers: 'resolvers/**/*',
    connectors: {
      upstream: { type: 'http', baseUrl: upstreamUrl },
      // The events step (bench/events.ts) posts signed webhooks here; the event log is the
      // default SQLite file (synchronous = FULL) in the generated project, retention raised so
      // that no event of a run is pruned before it is counted.
      ...(options.webhook && {
        [WEBHOOK.source]: { type: 'webhook', scheme: 'hmac', secret: WEBHOOK.secret, header: WEBHOOK.header, prefix: WEBHOOK.prefix },
      }),
    },
    ...(options.webhook && { eventLog: { url: 'sqlite:.junction/events.db', retention: { maxEvents: 10_000_000 } } }),
    // Workers share the stores: Redis database 11, emptied by nobody but holding only bench events.
    ...(workers > 1 && { pubsub: 'redis://127.0.0.1:6379/11', eventLog: { url: 'redis://127.0.0.1:6379/11', retention: { maxEvents: 10_000_000 } } }),
  };
  writeFileSync(path.join(dir, 'junction.config.yaml'), `# Written by bench/servers.ts (${mode}).\n${stringify(config)}`);
  return spawnNode(
    `hub (${mode})`,
    [path.join(options.hubRoot ?? ROOT, 'bin/junction.mjs'), 'serve', '--config', path.join(dir, 'junction.config.yaml'), '--port', '0', ...(workers > 1 ? ['--workers', String(workers)] : [])],
    (line) => {
      if (!line.startsWith('{')) return undefined;
      try {
        const entry = JSON.parse(line) as { url?: string; msg?: string };
        return entry.url && entry.msg?.includes('serving') ? entry.url : undefined;
      } catch {
        return undefined;
      }
    },
    { ...options, cleanup: () => rmSync(dir, { recursive: true, force: true }) },
  );
}

/** A process's resident set size in bytes (VmRSS of /proc/<pid>/status), its child processes' included. */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  // A `--workers` hub is a primary and its workers: the resident memory of them all.
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  return Number(match[1]) * 1024 + children.reduce((sum, child) => sum + rssBytes(child), 0);
}

/** CPU time (user + system) a process has used, in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Requests the upstream has answered (its GET /__count, which it does not count). */
export async function upstreamCount(upstreamUrl: string): Promise<number> {
  const res = await fetch(`${upstreamUrl}/__count`);
  return ((await res.json()) as { requests: number }).requests;
}

/** The hub's /metrics: value by metric name (summed over labels) and by name with its labels. */
export async function scrapeMetrics(graphqlUrl: string): Promise<Map<string, number>> {
  const res = await fetch(new URL('/metrics', graphqlUrl));
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const [, name, labels, value] = match;
    values.set(name!, (values.get(name!) ?? 0) + Number(value));
    if (labels) values.set(`${name}${labels}`, Number(value));
  }
  return values;
}
