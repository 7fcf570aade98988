// `junction serve --workers N`: real processes (a primary and its node:cluster workers) on one
// port, sharing pub/sub and event log on the machine's Redis. What a user relies on: requests
// spread over the workers, a subscription on one worker gets what a mutation on another
// publishes, /metrics counts every worker, a killed worker is replaced, SIGTERM drains them all,
// and a store the workers cannot share is refused with exit 2 before anything starts.
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runCli, SPAWN_TIMEOUT_MS, until } from './helpers.ts';
import { HubProcesses, type Served } from './processes.ts';

const SDL = `
type Query { pid: Int! slow: String! }
type Mutation { say(text: String!): String! }
type Subscription { said: String! }
`;
// Each answer names the worker process that gave it.
const RESOLVERS = `
export default {
  Query: {
    pid: () => process.pid,
    slow: () => {
      console.log('slow query started');
      return new Promise((resolve) => setTimeout(() => resolve('done'), 500));
    },
  },
  Mutation: {
    say: async (_, { text }, { pubsub }) => {
      await pubsub.publish('workers.said', { said: process.pid + ':' + text });
      return text;
    },
  },
  Subscription: { said: { subscribe: (_, __, { pubsub }) => pubsub.asyncIterableIterator('workers.said') } },
};
`;
// Its own Redis database number: the pub/sub channel is per database.
const SHARED = `server:\n  host: 127.0.0.1\npubsub: redis://127.0.0.1:6379/9\neventLog: redis://127.0.0.1:6379/9\n`;

const processes = new HubProcesses();
afterAll(() => processes.cleanup());

/** POSTs a query on a new connection (round-robin hands each new connection to the next worker). */
function post(url: string, query: string): Promise<{ status: number; body: { data?: Record<string, unknown>; errors?: unknown[] } }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ query });
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function pids(url: string, count: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let n = 0; n < count; n++) {
    const res = await post(url, '{ pid }');
    expect(res.status).toBe(200);
    seen.add(res.body.data!.pid as number);
  }
  return seen;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('junction serve --workers', () => {
  it('refuses a pub/sub, an event log or an MQTT consumer the workers cannot share: exit 2, each key named, nothing served', async () => {
    const dir = processes.temp({
      'schema/app.graphql': SDL,
      'resolvers/app.mjs': RESOLVERS,
      'junction.config.yaml': 'connectors:\n  sensors:\n    type: mqtt\n    url: mqtt://127.0.0.1:1883\n    clientId: hub\n    consume:\n      - topic: sensors/#\n',
    });
    const result = await runCli(['serve', '--port', '0', '--workers', '2'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('junction: invalid configuration');
    expect(result.stderr).toContain('junction.config.yaml: pubsub: --workers 2: the pub/sub must be shared by the workers');
    expect(result.stderr).toContain('junction.config.yaml: eventLog: --workers 2: the event log must be shared by the workers');
    expect(result.stderr).toContain('junction.config.yaml: connectors.sensors.consume: --workers 2: an MQTT persistent session');
  });

  it('refuses a --workers that is not a number of processes, with the usage', async () => {
    const dir = processes.temp({ 'schema/app.graphql': SDL, 'junction.config.yaml': SHARED });
    for (const bad of ['0', 'two', '1.5']) {
      const result = await runCli(['serve', '--workers', bad], { cwd: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`--workers: expected a number of processes (1-256), got "${bad}"`);
    }
  });

  it('a worker that cannot start (its port is taken) stops them all: exit 1 with the reason, no process left', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const dir = processes.temp({ 'schema/app.graphql': SDL, 'resolvers/app.mjs': RESOLVERS, 'junction.config.yaml': SHARED });
      const result = await runCli(['serve', '--port', String(port), '--workers', '2'], { cwd: dir });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`junction: cannot listen on 127.0.0.1:${port}: address already in use`);
      expect(result.stdout).toContain('"worker exited before it listened: stopping"');
      expect(result.stdout).not.toContain('serving');
      const pids = [...result.stdout.matchAll(/"pid":(\d+)/g)].map((m) => Number(m[1]));
      expect(pids.length).toBeGreaterThan(0);
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  describe('two workers sharing Redis', () => {
    let hub: Served;
    let workers: Set<number>;

    beforeAll(async () => {
      const dir = processes.temp({ 'schema/app.graphql': SDL, 'resolvers/app.mjs': RESOLVERS, 'junction.config.yaml': SHARED });
      hub = await processes.serve(dir, {}, ['--workers', '2']);
    }, 2 * SPAWN_TIMEOUT_MS);

    it('says "serving" once, after both listen, and spreads new connections over both', async () => {
      const serving = hub.output().split('\n').filter((l) => l.includes('serving'));
      expect(serving).toHaveLength(1);
      expect(JSON.parse(serving[0]!)).toMatchObject({ workers: 2, msg: expect.stringContaining('with 2 workers') });
      expect(hub.output().split('\n').filter((l) => l.includes('"worker listening"'))).toHaveLength(2);
      workers = await pids(hub.url, 8);
      expect(workers.size).toBe(2);
      expect(workers.has(hub.child.pid!)).toBe(false);
    });

    it('/metrics counts the operations of every worker', async () => {
      const before = await operations(hub.origin);
      const answered = await pids(hub.url, 6);
      expect(answered.size).toBe(2);
      expect(await operations(hub.origin)).toBe(before + 6);
    });

    it('a subscription on one worker receives what mutations on each worker publish', async () => {
      const client = createClient({ url: hub.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
      try {
        const received: string[] = [];
        client.subscribe<{ said: string }>(
          { query: 'subscription { said }' },
          { next: ({ data }) => received.push(data!.said), error: (error) => received.push(`error: ${JSON.stringify(error)}`), complete: () => undefined },
        );
        // The subscription is registered with Redis shortly after the socket is acknowledged:
        // mutations are sent until one arrives, then three more, each on a new connection.
        let sent = 0;
        await until(async () => {
          await post(hub.url, `mutation { say(text: "m${sent++}") }`);
          return received.length > 0;
        }, 'the first event through Redis', 200);
        const last = [sent, sent + 1, sent + 2].map((n) => `m${n}`);
        for (const text of last) expect((await post(hub.url, `mutation { say(text: "${text}") }`)).body.data).toEqual({ say: text });
        await until(() => received.length > 0 && received.at(-1)!.endsWith(':m' + (sent + 2)), 'the last event');
        // Every one of them, in order, and both workers' among them.
        expect(received.slice(-3).map((r) => r.split(':')[1])).toEqual(last);
        expect(new Set(received.slice(-3).map((r) => Number(r.split(':')[0])))).toEqual(workers);
      } finally {
        await client.dispose();
      }
    });

    it('replaces a worker killed with SIGKILL; the hub keeps answering', async () => {
      const [victim, survivor] = [...workers];
      process.kill(victim!, 'SIGKILL');
      await until(() => hub.output().includes('"worker exited: starting another"'), 'the primary to replace the worker');
      let now = new Set<number>();
      // A connection handed to the killed worker before the primary noticed fails: tried again.
      await until(async () => (now = await pids(hub.url, 4).catch(() => new Set<number>())).size === 2, 'two workers answering again');
      expect(now.has(victim!)).toBe(false);
      expect(now.has(survivor!)).toBe(true);
      workers = now;
    });

    it('SIGTERM: every worker finishes its requests and exits, then the primary exits 0', async () => {
      const slow = post(hub.url, '{ slow }');
      // The request is in a worker's resolver before the signal.
      await until(() => hub.output().includes('slow query started'), 'the slow query to start');
      hub.child.kill('SIGTERM');
      expect(await slow).toMatchObject({ status: 200, body: { data: { slow: 'done' } } });
      expect(await hub.exited).toEqual({ code: 0, signal: null });
      expect([...workers].filter(alive)).toEqual([]);
      expect(hub.output().split('\n').filter((l) => l.includes('"worker stopped"') && l.includes('"code":0'))).toHaveLength(2);
    });
  });
});

async function operations(origin: string): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('junction_graphql_operations_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}
