import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LoadOptions, RunResult } from './load.ts';

/**
 * The wrk driver of `npm run bench` (Debian's `wrk` 4.1, `apt-get install -y wrk`): a C load
 * generator (epoll, LuaJIT hooks) that needs a fraction of autocannon's CPU per request, which
 * matters when the generator shares 2 cores with the server it measures. Used when `wrk` is on
 * PATH (or with `--load wrk`); bench/load.ts falls back to autocannon otherwise.
 */

/** wrk is on PATH. */
export function wrkAvailable(): boolean {
  // `wrk --version` prints its version and usage and exits 1; a missing binary gives an error.
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

/** The Lua script's result line: its `done()` hook writes it after wrk's own summary. */
const MARKER = 'WRK_RESULT ';

interface WrkSummary {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  connect: number;
  read: number;
  write: number;
  /** Answers with a status above 399 (wrk's own count). */
  status: number;
  timeout: number;
  /** Counted by the script's `response()` hook, present only when a body is expected. */
  non2xx: number;
  mismatches: number;
}

/**
 * The Lua script for one load: the method, headers and body of every request and, when
 * `expectedFile` is given, a `response()` hook comparing each body byte for byte with it (this
 * costs wrk about 2 % more CPU per response on Q3, so every response stays checked, as with
 * autocannon's expectBody). The hook's counters live in each thread's Lua state; `done()` sums
 * them through the thread objects kept by `setup()` and prints one JSON line.
 */
function script(method: 'GET' | 'POST', bodyFile: string | undefined, expectedFile: string | undefined): string {
  // JSON string literals are valid Lua string literals for these (ASCII) paths.
  const lua = (s: string) => JSON.stringify(s);
  return `-- Written by bench/wrk.ts for one run.
local function slurp(p) local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s end
wrk.method = "${method}"
${bodyFile === undefined ? '' : `wrk.headers["Content-Type"] = "application/json"\nwrk.body = slurp(${lua(bodyFile)})`}
non2xx = 0
mismatches = 0
${
  expectedFile === undefined
    ? ''
    : `local expected = slurp(${lua(expectedFile)})
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1
  elseif body ~= expected then mismatches = mismatches + 1 end
end`
}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local bad_status, bad_body = 0, 0
  for _, t in ipairs(threads) do bad_status = bad_status + t:get("non2xx"); bad_body = bad_body + t:get("mismatches") end
  local e = summary.errors
  io.write(string.format('\\n${MARKER}{"requests":%.0f,"durationUs":%.0f,"p50Us":%.0f,"p99Us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,"non2xx":%.0f,"mismatches":%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout, bad_status, bad_body))
end
`;
}

/**
 * One wrk process for `seconds` (fractions allowed): wrk's `-d` takes whole seconds only, so it
 * gets a generous bound and is stopped with SIGINT, on which it stops its threads (within its
 * 100 ms tick), measures its real running time and runs `done()` as at the end of `-d`.
 */
function runWrk(url: string, scriptFile: string, connections: number, threads: number, seconds: number): Promise<WrkSummary> {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${Math.ceil(seconds) + 30}s`, '--timeout', '10s', '-s', scriptFile, url];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGINT'), seconds * 1000);
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = output.split('\n').find((l) => l.startsWith(MARKER));
      if (line === undefined) reject(new Error(`wrk ${args.join(' ')} gave no result (exit ${signal ?? code}):\n${output}`));
      else resolve(JSON.parse(line.slice(MARKER.length)) as WrkSummary);
    });
  });
}

/**
 * Loads `url` with wrk over `connections` keep-alive connections (`wrkThreads` threads): a
 * warm-up run, then the measured run on fresh connections (wrk's statistics cannot be reset
 * mid-run). The measured run's first milliseconds include connecting, which wrk does for all
 * connections before its first request, while the server is idle.
 */
export async function measureWrk(url: string, options: LoadOptions): Promise<RunResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'junction-bench-wrk-'));
  try {
    let bodyFile: string | undefined;
    let expectedFile: string | undefined;
    if (options.body !== undefined) writeFileSync((bodyFile = path.join(dir, 'request.json')), options.body);
    if (options.expectBody !== undefined) writeFileSync((expectedFile = path.join(dir, 'expected.json')), options.expectBody);
    const scriptFile = path.join(dir, 'load.lua');
    writeFileSync(scriptFile, script(options.method ?? 'POST', bodyFile, expectedFile));
    const threads = Math.max(1, Math.min(options.wrkThreads ?? 2, options.connections));
    if (options.warmup > 0) await runWrk(url, scriptFile, options.connections, threads, options.warmup);
    options.onWindow?.();
    const s = await runWrk(url, scriptFile, options.connections, threads, options.duration);
    const ms = (us: number) => Math.round(us / 100) / 10;
    return {
      rps: s.durationUs > 0 ? s.requests / (s.durationUs / 1e6) : 0,
      p50: ms(s.p50Us),
      p99: ms(s.p99Us),
      requests: s.requests,
      errors: s.connect + s.read + s.write,
      timeouts: s.timeout,
      // Without the response hook (no body to compare), wrk's own count of statuses above 399.
      non2xx: expectedFile === undefined ? s.status : s.non2xx,
      mismatches: s.mismatches,
      warmupSeconds: options.warmup,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
