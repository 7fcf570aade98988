import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Child, type SpawnOptions, spawnNode, spawnServer, TSX } from './servers.ts';

/**
 * The peers `npm run bench` measures beside the hub, each in its own process:
 * - Tailcall 1.6.14 (Rust), the fastest public graphql-benchmarks entry, installed outside this
 *   repository by `sh ../shared/bench/tailcall/setup.sh` (under /tmp/tailcall, with its config:
 *   users batched with `batchKey`, in-flight dedupe on, the hub's shape);
 * - the plain Node `http` floor (bench/node-floor.ts), Q3's answer with no GraphQL at all.
 */

/** Where setup.sh installs Tailcall; `start.sh` there serves the workload. */
const TAILCALL_HOME = '/tmp/tailcall';
const TAILCALL_START = path.join(TAILCALL_HOME, 'start.sh');
const TAILCALL_BIN = path.join(TAILCALL_HOME, 'tailcall');
/** What the report says when Tailcall is not installed (the path is relative to this repository). */
export const TAILCALL_MISSING = 'not installed: run sh ../shared/bench/tailcall/setup.sh';

/** Tailcall's version line (`tailcall v1.6.14`), or undefined when it is not installed or does not run. */
export function tailcallVersion(): string | undefined {
  if (!existsSync(TAILCALL_START) || !existsSync(TAILCALL_BIN)) return undefined;
  try {
    return execFileSync(TAILCALL_BIN, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

/** A TCP port free on 127.0.0.1 right now (Tailcall takes its port from its config, not 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts Tailcall on a free port against `upstreamUrl` (the bench's own upstream, the process
 * the hub and the reference call too): `TC_PORT=… UPSTREAM=… /tmp/tailcall/start.sh`, which
 * renders its config into RUN_DIR (a temporary folder here) and execs the server, so the pid is
 * Tailcall's. Ready once `GET /status` answers 200.
 */
export async function startTailcall(upstreamUrl: string): Promise<Child> {
  const port = await freePort();
  const runDir = mkdtempSync(path.join(tmpdir(), 'junction-bench-tailcall-'));
  const base = `http://127.0.0.1:${port}`;
  return spawnServer(
    'tailcall',
    TAILCALL_START,
    [],
    {
      probe: async () => {
        const res = await fetch(`${base}/status`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.ok ? `${base}/graphql` : undefined;
      },
    },
    {
      env: { TC_PORT: String(port), UPSTREAM: upstreamUrl, RUN_DIR: runDir },
      cleanup: () => rmSync(runDir, { recursive: true, force: true }),
    },
  );
}

/** Starts the plain Node `http` floor (bench/node-floor.ts) with the servers' node flags. */
export function startNodeFloor(options: SpawnOptions = {}): Promise<Child> {
  return spawnNode('node floor', [...TSX, 'bench/node-floor.ts', '--port', '0'], (line) => /node floor on (\S+)/.exec(line)?.[1], options);
}
