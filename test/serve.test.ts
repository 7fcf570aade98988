// `junction serve` as a real child process: which port it takes, its endpoints, the SIGTERM
// drain of SPEC §7, and the demo `npm start` serves.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startJsonPlaceholder } from '../demo/jsonplaceholder.ts';
import { gql, project, ROOT, SPAWN_TIMEOUT_MS } from './helpers.ts';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** A project with a slow query (for the drain) and a subscription that ticks from the start. */
const FILES: Record<string, string> = {
  'schema/app.graphql': `type Query {
  ping: String!
  "Answers after ms milliseconds."
  slow(ms: Int!): String!
}

type Subscription {
  "0, 1, 2, … every 100 ms, the first at once."
  ticks: Int!
}
`,
  'resolvers/app.ts': `import { setTimeout as sleep } from 'node:timers/promises';

export default {
  Query: {
    ping: () => 'pong',
    slow: async (_: unknown, { ms }: { ms: number }, { logger }: { logger: { info(msg: string): void } }) => {
      logger.info('slow query started');
      await sleep(ms);
      return \`slept \${ms} ms\`;
    },
  },
  Subscription: {
    ticks: {
      subscribe: async function* () {
        for (let i = 0; ; i++) {
          yield { ticks: i };
          await sleep(100);
        }
      },
    },
  },
};
`,
};

type LogLine = Record<string, unknown> & { msg?: string };

interface Served {
  child: ChildProcess;
  /** Every stdout line so far, parsed (pino JSON lines; anything else as { raw }). */
  lines: LogLine[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The first log line (already written or to come) that matches. */
  waitFor: (what: string, match: (line: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>;
}

/** Hubs started by the running test; hubs a describe block shares are killed in afterAll. */
const children = new Set<ChildProcess>();
const shared = new Set<ChildProcess>();
const removers: (() => void)[] = [];

async function kill(list: Set<ChildProcess>): Promise<void> {
  await Promise.all(
    [...list].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await gone;
      }
      list.delete(child);
    }),
  );
}

// Whatever a test left running (it failed half-way): kill it and wait for it to go.
afterEach(() => kill(children));

afterAll(async () => {
  await kill(shared);
  for (const remove of removers.splice(0)) remove();
});

/** Starts `node bin/junction.mjs serve …` in `cwd` with only PATH, HOME and `env`. */
function serve(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; shared?: boolean }): Served {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/junction.mjs'), 'serve', ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  (options.shared ? shared : children).add(child);
  const lines: LogLine[] = [];
  const listeners = new Set<() => void>();
  let stdout = '';
  let pending = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    pending += chunk.toString();
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    for (const text of complete.filter(Boolean)) {
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        lines.push({ raw: text });
      }
    }
    for (const listener of listeners) listener();
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': the process may exit before its last output has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      resolve({ code, signal });
      for (const listener of listeners) listener();
    });
  });

  const waitFor = (what: string, match: (line: LogLine) => boolean, timeoutMs = SPAWN_TIMEOUT_MS) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) return done(() => resolve(found));
        if (child.exitCode !== null || child.signalCode !== null) {
          done(() => reject(new Error(`junction serve exited (${child.exitCode ?? child.signalCode}) before ${what}\nstdout: ${stdout}\nstderr: ${stderr}`)));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`timed out waiting for ${what}\nstdout: ${stdout}\nstderr: ${stderr}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        settle();
      };
      listeners.add(check);
      check();
    });

  return { child, lines, stderr: () => stderr, exited, waitFor };
}

/** Starts the hub and waits for its "serving" log line; returns that line too. */
async function serveUp(args: string[], options: Parameters<typeof serve>[1]): Promise<Served & { serving: LogLine }> {
  const served = serve(args, options);
  const serving = await served.waitFor('the "serving" log line', (l) => typeof l.msg === 'string' && l.msg.includes('serving'));
  return { ...served, serving };
}

/** SIGTERM, then the exit status. */
async function stop(served: Served): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  served.child.kill('SIGTERM');
  return served.exited;
}

function temp(config: string, files: Record<string, string> = FILES): string {
  const { dir, remove } = project({ ...files, 'junction.config.yaml': config });
  removers.push(remove);
  return dir;
}

const taken = new Set<number>();
/** A port nothing listens on: the OS picks one for a moment; never the same one twice here. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
}

/** Resolves true when a new TCP connection to the port is accepted, false when it is refused. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function servingLine(port: number): string {
  return `Junction ${VERSION} serving http://localhost:${port}/graphql`;
}

describe('the port: --port, else PORT, else server.port', () => {
  it('--port beats PORT and server.port', async () => {
    const [fromConfig, fromEnv, fromOption] = [await freePort(), await freePort(), await freePort()];
    const hub = await serveUp(['--port', String(fromOption)], {
      cwd: temp(`server:\n  port: ${fromConfig}\n`),
      env: { PORT: String(fromEnv) },
    });
    expect(hub.serving).toMatchObject({ level: 30, msg: servingLine(fromOption), url: `http://localhost:${fromOption}/graphql` });
    expect((await fetch(`http://127.0.0.1:${fromOption}/healthz`)).status).toBe(200);
    expect(await accepts(fromEnv)).toBe(false);
    expect(await accepts(fromConfig)).toBe(false);
    expect(await stop(hub)).toEqual({ code: 0, signal: null });
  });

  it('PORT beats server.port', async () => {
    const [fromConfig, fromEnv] = [await freePort(), await freePort()];
    const hub = await serveUp([], { cwd: temp(`server:\n  port: ${fromConfig}\n`), env: { PORT: String(fromEnv) } });
    expect(hub.serving.msg).toBe(servingLine(fromEnv));
    expect((await fetch(`http://127.0.0.1:${fromEnv}/healthz`)).status).toBe(200);
    expect(await accepts(fromConfig)).toBe(false);
    expect(await stop(hub)).toEqual({ code: 0, signal: null });
  });

  it('server.port when neither is given', async () => {
    const fromConfig = await freePort();
    const hub = await serveUp([], { cwd: temp(`server:\n  port: ${fromConfig}\n`) });
    expect(hub.serving.msg).toBe(servingLine(fromConfig));
    expect((await fetch(`http://127.0.0.1:${fromConfig}/healthz`)).status).toBe(200);
    expect(await stop(hub)).toEqual({ code: 0, signal: null });
  });

  it('server.port from a ${VAR:-default}: the default when unset, the variable when set', async () => {
    const [byDefault, fromVar] = [await freePort(), await freePort()];
    const config = `server:\n  port: \${JUNCTION_TEST_PORT:-${byDefault}}\n`;
    const first = await serveUp([], { cwd: temp(config) });
    expect(first.serving.msg).toBe(servingLine(byDefault));
    expect(await stop(first)).toEqual({ code: 0, signal: null });
    const second = await serveUp([], { cwd: temp(config), env: { JUNCTION_TEST_PORT: String(fromVar) } });
    expect(second.serving.msg).toBe(servingLine(fromVar));
    expect(await stop(second)).toEqual({ code: 0, signal: null });
  });

  it('a port already in use: exit 1 with one line saying so', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const hub = serve(['--port', String(port)], { cwd: temp('server:\n  port: 4000\n') });
      expect(await hub.exited).toEqual({ code: 1, signal: null });
      expect(hub.stderr()).toBe(`junction: cannot listen on port ${port}: address already in use\n`);
      expect(hub.lines.some((l) => l.msg?.includes('serving'))).toBe(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

describe('endpoints of a served hub', () => {
  let hub: Served;
  let origin: string;

  beforeAll(async () => {
    const port = await freePort();
    hub = await serveUp(['--port', String(port)], { cwd: temp('server:\n  port: 4000\n'), shared: true });
    origin = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    if (hub.child.exitCode === null) expect(await stop(hub)).toEqual({ code: 0, signal: null });
  });

  it('GET /healthz: 200', async () => {
    const res = await fetch(`${origin}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz: 200 JSON, no connectors', async () => {
    const res = await fetch(`${origin}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ status: 'ready', connectors: [] });
  });

  it('POST /graphql answers a query', async () => {
    const res = await gql(`${origin}/graphql`, 'query Ping { ping hub { version } }');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { ping: 'pong', hub: { version: VERSION } } });
  });

  it('GET /metrics: Prometheus text with the operation counted and process metrics', async () => {
    const query = await gql(`${origin}/graphql`, 'query MetricsProbe { ping }');
    expect(query.body).toEqual({ data: { ping: 'pong' } });
    const res = await fetch(`${origin}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('# TYPE junction_graphql_operations_total counter\n');
    expect(text).toContain('junction_graphql_operations_total{type="query",name="MetricsProbe",outcome="success"} 1\n');
    expect(text).toMatch(/^process_cpu_user_seconds_total \d+(\.\d+)?$/m);
    expect(text).toMatch(/^junction_graphql_operation_duration_seconds_count\{type="query",name="MetricsProbe"\} 1$/m);
  });
});

describe('SIGTERM drains (SPEC §7)', () => {
  let client: Client | undefined;
  afterEach(async () => {
    await client?.dispose();
    client = undefined;
  });

  it('finishes the in-flight request, closes WebSockets with 1001, refuses new connections, exits 0', async () => {
    const port = await freePort();
    const hub = await serveUp(['--port', String(port)], { cwd: temp('server:\n  port: 4000\n') });

    // A live subscription over graphql-ws, with its first tick received.
    const closeCodes: number[] = [];
    const ticks: number[] = [];
    let subscriptionEnd: unknown = 'still open';
    client = createClient({ url: `ws://127.0.0.1:${port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    client.on('closed', (event) => closeCodes.push((event as { code: number }).code));
    const firstTick = new Promise<void>((resolve, reject) => {
      client?.subscribe<{ ticks: number }>(
        { query: 'subscription { ticks }' },
        {
          next: (result) => {
            if (result.data) ticks.push(result.data.ticks);
            resolve();
          },
          error: (error) => {
            subscriptionEnd = error;
            reject(error instanceof Error ? error : new Error(`subscription failed: ${JSON.stringify(error)}`));
          },
          complete: () => (subscriptionEnd = 'complete'),
        },
      );
    });
    await firstTick;
    expect(ticks[0]).toBe(0);

    // A slow query, in flight when SIGTERM arrives.
    let slowSettled = false;
    const slow = fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ slow(ms: 1500) }' }),
    }).then(async (res) => {
      const result = { status: res.status, body: (await res.json()) as unknown };
      slowSettled = true;
      return result;
    });
    await hub.waitFor('the slow query to start', (l) => l.msg === 'slow query started');

    hub.child.kill('SIGTERM');
    await hub.waitFor('the draining log line', (l) => l.msg === 'draining: finishing in-flight requests, closing WebSockets');

    // New connections are refused while the slow request is still being answered.
    const deadline = Date.now() + 1_000;
    while ((await accepts(port)) && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    expect(await accepts(port)).toBe(false);
    expect(slowSettled).toBe(false);

    expect(await slow).toEqual({ status: 200, body: { data: { slow: 'slept 1500 ms' } } });
    expect(await hub.exited).toEqual({ code: 0, signal: null });
    expect(closeCodes).toEqual([1001]);
    expect(subscriptionEnd).not.toBe('still open');
    expect(hub.lines.find((l) => l.msg?.startsWith('draining'))).toMatchObject({ level: 30, signal: 'SIGTERM' });
    expect(hub.lines.at(-1)).toMatchObject({ level: 30, msg: 'stopped' });
    expect(hub.stderr()).toBe('');
  });
});

describe('Ctrl-C', () => {
  it('drains on the first SIGINT; a second one exits 1 at once, without waiting for the drain', async () => {
    const port = await freePort();
    const hub = await serveUp(['--port', String(port)], { cwd: temp('server:\n  port: 4000\n') });
    const slow = fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ slow(ms: 30000) }' }),
    }).then(
      (res) => res.status,
      () => 'connection closed',
    );
    await hub.waitFor('the slow query to start', (l) => l.msg === 'slow query started');
    hub.child.kill('SIGINT');
    await hub.waitFor('the draining log line', (l) => l.msg?.startsWith('draining') === true);
    hub.child.kill('SIGINT');
    // Exit 1 with this line, while the 30 s query still runs (its connection is cut, below):
    // the drain was not waited for.
    expect(await hub.exited).toEqual({ code: 1, signal: null });
    expect(hub.lines.at(-1)).toMatchObject({ level: 40, signal: 'SIGINT', msg: 'second interrupt: exiting without waiting' });
    expect(await slow).toBe('connection closed');
  });
});

describe('the demo (`npm start`: serve in the repository with PORT set)', () => {
  let client: Client | undefined;
  afterEach(async () => {
    await client?.dispose();
    client = undefined;
  });

  it('answers queries, and a posted message reaches a messagePosted subscriber over graphql-ws', async () => {
    const port = await freePort();
    const hub = await serveUp([], { cwd: ROOT, env: { PORT: String(port) } });
    expect(hub.serving.msg).toBe(servingLine(port));
    const url = `http://127.0.0.1:${port}/graphql`;

    expect((await gql(url, '{ hello hub { version } }')).body).toEqual({ data: { hello: 'Hello World!', hub: { version: VERSION } } });

    type Message = { id: string; author: string; text: string; postedAt: string };
    client = createClient({ url: `ws://127.0.0.1:${port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    const received = new Promise<Message>((resolve, reject) => {
      client?.subscribe<{ messagePosted: Message }>(
        { query: 'subscription { messagePosted { id author text postedAt } }' },
        {
          next: (result) => (result.data ? resolve(result.data.messagePosted) : reject(new Error(JSON.stringify(result)))),
          error: (error) => reject(error instanceof Error ? error : new Error(`subscription failed: ${JSON.stringify(error)}`)),
          complete: () => reject(new Error('subscription completed without a message')),
        },
      );
    });

    // The server registers the subscription a moment after the client sends it, and graphql-ws
    // does not say when: post until the subscriber hears one, then compare.
    const posted: Message[] = [];
    let heard: Message | undefined;
    for (let i = 1; heard === undefined && i <= 50; i++) {
      const res = await gql(url, 'mutation Post($text: String!) { postMessage(author: "serve.test", text: $text) { id author text postedAt } }', {
        text: `hello ${i}`,
      });
      expect(res.body.errors).toBeUndefined();
      posted.push(res.body.data?.postMessage as Message);
      heard = await Promise.race([received, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 100))]);
    }
    expect(heard).toBeDefined();
    expect(posted).toContainEqual(heard);
    expect(heard).toMatchObject({ author: 'serve.test', text: expect.stringMatching(/^hello \d+$/) });

    const listed = await gql(url, '{ messages(first: 1) { id text } }');
    expect(listed.body).toEqual({ data: { messages: [{ id: posted.at(-1)?.id, text: posted.at(-1)?.text }] } });

    await client.dispose();
    client = undefined;
    expect(await stop(hub)).toEqual({ code: 0, signal: null });
  });
  it('serves the demo shop from SQLite: relations batched, a transfer in one transaction', async () => {
    const port = await freePort();
    const hub = await serveUp([], { cwd: ROOT, env: { PORT: String(port) } });
    const url = `http://127.0.0.1:${port}/graphql`;
    const shop = await gql(url, '{ customers(first: 2) { name orders { status items { name quantity } } } }');
    expect(shop.body).toEqual({
      data: {
        customers: [
          {
            name: 'Ada Lovelace',
            orders: [
              { status: 'delivered', items: [{ name: 'Mechanical keyboard', quantity: 1 }, { name: 'Laptop stand', quantity: 1 }] },
              { status: 'shipped', items: [{ name: '27" monitor', quantity: 2 }] },
            ],
          },
          {
            name: 'Grace Hopper',
            orders: [
              { status: 'delivered', items: [{ name: 'Trackball mouse', quantity: 1 }, { name: 'USB-C dock', quantity: 1 }] },
              { status: 'placed', items: [{ name: 'Mechanical keyboard', quantity: 2 }] },
            ],
          },
        ],
      },
    });
    // A transfer that would overdraw rolls back its credit too.
    const before = (await gql(url, '{ accounts { id balanceCents } }')).body.data?.accounts;
    const refused = await gql(url, 'mutation { transfer(from: 2, to: 3, amountCents: 999999999) { id } }');
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', connector: 'shop', constraint: 'balance_not_negative' });
    expect((await gql(url, '{ accounts { id balanceCents } }')).body.data?.accounts).toEqual(before);
    expect(await stop(hub)).toEqual({ code: 0, signal: null });
  });

  it('joins the demo REST API through its http connector, pointed at `npm run demo-api` by DEMO_API_URL', async () => {
    const api = await startJsonPlaceholder();
    try {
      const port = await freePort();
      const hub = await serveUp([], { cwd: ROOT, env: { PORT: String(port), DEMO_API_URL: api.url } });
      const url = `http://127.0.0.1:${port}/graphql`;
      const r = await gql(url, '{ posts { id title user { name } } }');
      expect(r.body.errors).toBeUndefined();
      const posts = r.body.data?.posts as { id: string; title: string; user: { name: string } }[];
      expect(posts).toHaveLength(100);
      expect(posts[0]).toEqual({ id: '1', title: 'sunt aut facere repellat provident occaecati excepturi optio reprehenderit', user: { name: 'Leanne Graham' } });
      // The posts and all their authors: two upstream calls.
      expect(api.requests()).toBe(2);
      // posts is cached by @cache: asking again costs the authors' call only.
      await gql(url, '{ posts { user { name } } }');
      expect(api.requests()).toBe(3);
      expect(await stop(hub)).toEqual({ code: 0, signal: null });
    } finally {
      await api.close();
    }
  });
});
