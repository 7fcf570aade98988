import { isDeepStrictEqual } from 'node:util';
import autocannon from 'autocannon';
import type { Query } from './workload.ts';
import { measureWrk } from './wrk.ts';

/** The load generators the bench can drive: wrk (bench/wrk.ts) when on PATH, autocannon otherwise. */
export type LoadGenerator = 'wrk' | 'autocannon';

/** What the measured window of one load run gave. */
export interface RunResult {
  /** Responses per second over the measured window. */
  rps: number;
  /** Latency percentiles of the window's responses, in milliseconds. */
  p50: number;
  p99: number;
  /** Responses completed in the window. */
  requests: number;
  /** Connection errors and timeouts in the window. */
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Responses whose body was not byte for byte the checked correct body. */
  mismatches: number;
  /** Seconds of warm-up before the window opened (longer than asked while connections were still being accepted). */
  warmupSeconds: number;
}

export interface LoadOptions {
  generator: LoadGenerator;
  /** wrk's threads (default 2); autocannon runs in this process. */
  wrkThreads?: number;
  connections: number;
  /** Seconds of load before the measured window. */
  warmup: number;
  /** Seconds of the measured window. */
  duration: number;
  /** When given, every response body is compared with it (autocannon's expectBody, wrk's response hook). */
  expectBody?: string;
  method?: 'GET' | 'POST';
  body?: string;
  /** Called when the measured window opens. */
  onWindow?: () => void;
}

/** Longest warm-up while waiting for every connection's first answer. */
const MAX_WARMUP_MS = 60_000;

/** One load run on `url` with the chosen generator: warm-up, then the measured window. */
export function measure(url: string, options: LoadOptions): Promise<RunResult> {
  return options.generator === 'wrk' ? measureWrk(url, options) : measureAutocannon(url, options);
}

/**
 * Loads `url` over `connections` keep-alive connections with autocannon (in this process), then
 * measures a window of `duration` seconds on the same connections. The window opens after the
 * warm-up and once every connection has had an answer: a Node server that is saturated accepts
 * one new connection per event-loop turn (libuv), so the first seconds of a run mostly measure
 * connection set-up, which is not what the workload is about.
 */
function measureAutocannon(url: string, options: LoadOptions): Promise<RunResult> {
  const { connections, expectBody } = options;
  const instance = autocannon({
    url,
    method: options.method ?? 'POST',
    headers: options.method === 'GET' ? {} : { 'content-type': 'application/json' },
    ...(options.body !== undefined && { body: options.body }),
    connections,
    // Stopped below; the duration only bounds a run that never settles.
    duration: (MAX_WARMUP_MS + options.duration * 1000) / 1000 + 30,
    ...(expectBody !== undefined && { expectBody }),
  }, () => undefined); // with a callback autocannon returns its instance (events, stop()), not a promise
  const started = performance.now();
  const answered = new Set<unknown>();
  let windowStart: number | undefined;
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let mismatches = 0;

  return new Promise((resolve, reject) => {
    const finish = () => {
      instance.stop();
      const now = performance.now();
      const seconds = (now - (windowStart ?? now)) / 1000;
      const sorted = Float64Array.from(latencies).sort();
      const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);
      resolve({
        rps: seconds > 0 ? latencies.length / seconds : 0,
        p50: Math.round(pct(50) * 10) / 10,
        p99: Math.round(pct(99) * 10) / 10,
        requests: latencies.length,
        errors,
        timeouts,
        non2xx,
        mismatches,
        warmupSeconds: Math.round((((windowStart ?? now) - started) / 1000) * 10) / 10,
      });
    };
    const open = () => {
      windowStart = performance.now();
      options.onWindow?.();
      setTimeout(finish, options.duration * 1000);
    };
    const tryOpen = () => {
      if (windowStart !== undefined) return;
      const elapsed = performance.now() - started;
      if (elapsed >= options.warmup * 1000 && (answered.size >= connections || elapsed >= MAX_WARMUP_MS)) open();
    };
    const poll = setInterval(() => {
      tryOpen();
      if (windowStart !== undefined) clearInterval(poll);
    }, 50);
    instance.on('response', (client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (windowStart === undefined) {
        answered.add(client);
        if (answered.size >= connections) tryOpen();
        return;
      }
      latencies.push(responseTime);
      if (statusCode < 200 || statusCode > 299) non2xx++;
    });
    // Not in @types/autocannon's event list: a body that differs from expectBody.
    (instance as NodeJS.EventEmitter).on('reqMismatch', () => {
      if (windowStart !== undefined) mismatches++;
    });
    instance.on('reqError', (error: Error) => {
      if (windowStart === undefined) return;
      if (error.message === 'request timed out') timeouts++;
      else errors++;
    });
    instance.on('done', () => {
      clearInterval(poll);
      if (windowStart === undefined) reject(new Error(`load on ${url} ended before its measured window`));
    });
  });
}

export interface SampleCheck {
  checked: number;
  failed: number;
  /** What the first wrong answer was, shortened. */
  firstFailure?: string;
  /** The exact body every answer had, when all were correct and identical. */
  body?: string;
}

/**
 * Sends `count` requests (`concurrency` at a time) and compares each parsed body with the
 * query's expected answer, built from the data. A fast wrong answer is a failure.
 */
export async function checkSample(url: string, query: Query, count: number, concurrency = 10): Promise<SampleCheck> {
  const bodies: string[] = [];
  let failed = 0;
  let firstFailure: string | undefined;
  let sent = 0;
  const worker = async () => {
    while (sent < count) {
      sent++;
      let text = '';
      let problem: string | undefined;
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: query.body });
        text = await res.text();
        if (res.status !== 200) problem = `status ${res.status}`;
        else if (!isDeepStrictEqual(JSON.parse(text), query.expected)) problem = 'wrong body';
      } catch (error) {
        problem = (error as Error).message;
      }
      if (problem === undefined) {
        bodies.push(text);
      } else {
        failed++;
        firstFailure ??= `${problem}: ${text.slice(0, 300)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const [first] = bodies;
  const same = first !== undefined && failed === 0 && bodies.every((b) => b === first);
  return { checked: count, failed, ...(firstFailure !== undefined && { firstFailure }), ...(same && { body: first }) };
}
