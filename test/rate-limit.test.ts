// `server.rateLimit`: a token bucket per caller. The greedy client gets 429 + Retry-After and a
// RATE_LIMITED error with retryAfterMs (over WebSocket, the operation gets that error); other
// callers keep their own bucket; with a redis:// store, two hub processes share the buckets.
// Refill is 1 token per 100 s, so no test depends on how fast the machine is.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, project, ROOT, SPAWN_TIMEOUT_MS, startHub, type GraphQLResponse, type TestHub } from './helpers.ts';

const KEY_A = 'rate-key-a-0123456789abcdef';
const KEY_B = 'rate-key-b-0123456789abcdef';
const files = {
  'schema/s.graphql': 'type Query { whoami: String! }',
  'resolvers/r.mjs': 'export default { Query: { whoami: (_, __, { user }) => user?.sub ?? "anonymous" } }',
};
const apiKeys = [
  { key: '${KEY_A}', sub: 'svc-a' },
  { key: '${KEY_B}', sub: 'svc-b' },
];

/** Asserts the exact refusal a client over its limit gets; returns retryAfterMs. */
function expectLimited(r: GraphQLResponse, limits = { rps: 0.01, burst: 3 }): number {
  expect(r.status).toBe(429);
  const retryAfterMs = r.body.errors?.[0]?.extensions?.retryAfterMs as number;
  expect(retryAfterMs).toBeGreaterThan(0);
  expect(retryAfterMs).toBeLessThanOrEqual(1 / limits.rps * 1000);
  expect(r.headers.get('retry-after')).toBe(String(Math.ceil(retryAfterMs / 1000)));
  expect(r.body).toEqual({
    errors: [
      {
        message: `Rate limit exceeded: ${limits.rps} requests per second (burst ${limits.burst}); retry in ${retryAfterMs} ms`,
        extensions: { code: 'RATE_LIMITED', retryAfterMs },
      },
    ],
  });
  return retryAfterMs;
}

describe('in memory, by subject', () => {
  let h: TestHub;
  beforeAll(async () => {
    h = await startHub(files, { auth: { apiKeys }, server: { rateLimit: { rps: 0.01, burst: 3 } } }, { KEY_A, KEY_B });
  }, 60_000);
  afterAll(() => h?.stop());

  it('lets a caller make `burst` requests, then answers 429 with Retry-After and RATE_LIMITED', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_A })).body).toEqual({ data: { whoami: 'svc-a' } });
    }
    expectLimited(await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_A }));
    // Still refused: a refused request takes nothing, and gives nothing back.
    expectLimited(await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_A }));
  });

  it('gives every other caller its own bucket: another key, and anonymous callers by IP', async () => {
    expect((await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_B })).body).toEqual({ data: { whoami: 'svc-b' } });
    expect((await gql(h.url, '{ whoami }')).body).toEqual({ data: { whoami: 'anonymous' } });
  });

  it('refuses an operation over WebSocket with the same error once the bucket is empty', async () => {
    const ws = new WebSocket(h.wsUrl, 'graphql-transport-ws');
    const messages: Record<string, unknown>[] = [];
    const answers = new Promise<Record<string, unknown>[]>((resolve) => {
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.type === 'connection_ack') {
          for (const id of ['1', '2']) ws.send(JSON.stringify({ type: 'subscribe', id, payload: { query: '{ whoami }' } }));
          return;
        }
        if (m.type === 'next' || m.type === 'error') messages.push(m);
        if (messages.length === 2) resolve(messages);
      });
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'connection_init', payload: { apiKey: KEY_B } }));
    // svc-b has used one of its 3 tokens over HTTP: these two operations take the last two.
    const [first, second] = (await answers).sort((a, b) => String(a.id).localeCompare(String(b.id)));
    expect(first).toEqual({ id: '1', type: 'next', payload: { data: { whoami: 'svc-b' } } });
    expect(second).toEqual({ id: '2', type: 'next', payload: { data: { whoami: 'svc-b' } } });
    const refused = await new Promise<Record<string, unknown>>((resolve) => {
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.id === '3') resolve(m);
      });
      ws.send(JSON.stringify({ type: 'subscribe', id: '3', payload: { query: '{ whoami }' } }));
    });
    const payload = refused.payload as { message: string; extensions: { code: string; retryAfterMs: number } }[];
    expect(refused.type).toBe('error');
    expect(payload).toEqual([
      {
        message: `Rate limit exceeded: 0.01 requests per second (burst 3); retry in ${payload[0]!.extensions.retryAfterMs} ms`,
        extensions: { code: 'RATE_LIMITED', retryAfterMs: payload[0]!.extensions.retryAfterMs },
      },
    ]);
    expect(payload[0]!.extensions.retryAfterMs).toBeGreaterThan(0);
    // The connection stays open: only the operation was refused.
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});

describe('in memory, by ip', () => {
  let h: TestHub;
  beforeAll(async () => {
    h = await startHub(files, { auth: { apiKeys }, server: { rateLimit: { rps: 0.01, burst: 2, by: 'ip' } } }, { KEY_A, KEY_B });
  }, 60_000);
  afterAll(() => h?.stop());

  it('makes every caller from one address share a bucket, whatever its key', async () => {
    expect((await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_A })).status).toBe(200);
    expect((await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_B })).status).toBe(200);
    expectLimited(await gql(h.url, '{ whoami }'), { rps: 0.01, burst: 2 });
  });
});

describe('in Redis that cannot be reached', () => {
  let h: TestHub;
  beforeAll(async () => {
    // Port 1: nothing listens there; the hub starts anyway (after its connect timeout at most).
    h = await startHub(files, { server: { rateLimit: { rps: 0.01, burst: 1, store: 'redis://127.0.0.1:1' } } });
  }, 60_000);
  afterAll(() => h?.stop());

  it('lets requests through (fails open) and says so once in the log', async () => {
    for (let i = 0; i < 3; i++) expect((await gql(h.url, '{ whoami }')).body).toEqual({ data: { whoami: 'anonymous' } });
    const warnings = h.logs.filter((l) => String(l.msg).startsWith('rate-limit store (redis) unreachable'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.level).toBe(40);
  });
});

describe('in Redis, shared by two hub processes', () => {
  const children: ChildProcess[] = [];
  let dir: string;
  let remove: () => void;
  let urls: string[];
  const sub = `svc-${randomUUID()}`;
  const key = `redis-key-${randomUUID()}`;

  /** `junction serve` as a real process; resolves with its URL from the JSON "serving" line. */
  function serve(): Promise<string> {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/junction.mjs'), 'serve', '--port', '0'], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, SHARED_KEY: key },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "serving" line\nstdout: ${out}\nstderr: ${err}`)), SPAWN_TIMEOUT_MS);
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        for (const line of out.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const parsed = JSON.parse(line) as { url?: string; msg?: string };
            if (parsed.url && parsed.msg?.includes('serving')) {
              clearTimeout(timer);
              resolve(parsed.url);
            }
          } catch {
            // a partial line: more is coming
          }
        }
      });
      child.once('exit', (code) => reject(new Error(`junction serve exited with ${code}\nstdout: ${out}\nstderr: ${err}`)));
    });
  }

  beforeAll(async () => {
    ({ dir, remove } = project({
      ...files,
      'junction.config.yaml': [
        'server:',
        '  host: 127.0.0.1',
        '  rateLimit: { rps: 0.01, burst: 4, store: "redis://127.0.0.1:6379" }',
        'auth:',
        '  apiKeys:',
        `    - { key: "\${SHARED_KEY}", sub: "${sub}" }`,
        '',
      ].join('\n'),
    }));
    urls = await Promise.all([serve(), serve()]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(
      children.map((child) =>
        child.exitCode === null && child.signalCode === null ? new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGKILL'))) : undefined,
      ),
    );
    remove?.();
  });

  it('counts a caller\'s requests across both hubs: 4 allowed in all, the 5th refused by either', async () => {
    const [one, two] = urls as [string, string];
    expect(one).not.toBe(two);
    const headers = { 'x-api-key': key };
    for (const url of [one, two, one, two]) {
      expect((await gql(url, '{ whoami }', undefined, headers)).body).toEqual({ data: { whoami: sub } });
    }
    expectLimited(await gql(one, '{ whoami }', undefined, headers), { rps: 0.01, burst: 4 });
    expectLimited(await gql(two, '{ whoami }', undefined, headers), { rps: 0.01, burst: 4 });
  }, 60_000);
});
