import { type Client, createClient, type ExecutionResult } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, startHub, type TestHub } from './helpers.ts';

const sdl = `
type Query { ok: String! node(id: ID!): Node }
type Node { id: ID! child: Node }
type Mutation { send(text: String!): String! }
type Subscription { received: String! }
`;

const resolvers = `
export default {
  Query: { ok: () => 'fine', node: (_, { id }) => ({ id }) },
  Node: { child: (n) => ({ id: n.id + '.1' }) },
  Mutation: {
    send: async (_, { text }, { pubsub }) => { await pubsub.publish('RECEIVED', { received: text }); return text; },
  },
  Subscription: { received: { subscribe: (_, __, { pubsub }) => pubsub.asyncIterableIterator('RECEIVED') } },
};
`;

let h: TestHub;
let client: Client;
beforeAll(async () => {
  h = await startHub(
    { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers },
    { server: { limits: { depth: 4 } } },
  );
});
afterEach(async () => {
  await client?.dispose();
});
afterAll(() => h.stop());

function connect(): Client {
  client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  return client;
}

/** Collects a subscription's results until `count` arrived; returns them and a stop function. */
function collect(c: Client, query: string, count: number) {
  const results: ExecutionResult[] = [];
  let stop = () => {};
  const done = new Promise<ExecutionResult[]>((resolve, reject) => {
    stop = c.subscribe(
      { query },
      {
        next: (r) => {
          results.push(r as ExecutionResult);
          if (results.length === count) resolve(results);
        },
        error: reject,
        complete: () => resolve(results),
      },
    );
  });
  return { done, stop: () => stop() };
}

/** Waits until the hub holds exactly `n` listeners for `trigger` (graphql-ws acks silently). */
async function listening(trigger: string, n = 1): Promise<void> {
  const ee = (h.hub.pubsub as unknown as { ee: { listenerCount(e: string): number } }).ee;
  for (let i = 0; i < 200 && ee.listenerCount(trigger) !== n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(ee.listenerCount(trigger)).toBe(n);
}

describe('graphql-ws on the same port as HTTP', () => {
  it('runs queries and mutations over the WebSocket', async () => {
    const c = connect();
    const q = await collect(c, '{ ok }', 1).done;
    expect(q).toEqual([{ data: { ok: 'fine' } }]);
    const m = await collect(c, 'mutation { send(text: "over ws") }', 1).done;
    expect(m).toEqual([{ data: { send: 'over ws' } }]);
  });

  it('streams published events to every subscriber, in order', async () => {
    const c = connect();
    const a = collect(c, 'subscription { received }', 3);
    const b = collect(c, 'subscription { received }', 3);
    await listening('RECEIVED', 2);
    for (const text of ['one', 'two', 'three']) await gql(h.url, 'mutation($t: String!) { send(text: $t) }', { t: text });
    const expected = ['one', 'two', 'three'].map((t) => ({ data: { received: t } }));
    expect(await a.done).toEqual(expected);
    expect(await b.done).toEqual(expected);
    a.stop();
    b.stop();
  });

  it('releases the pub/sub listener when a client unsubscribes', async () => {
    const c = connect();
    const sub = collect(c, 'subscription { received }', 1);
    await listening('RECEIVED', 1);
    sub.stop();
    await listening('RECEIVED', 0);
  });

  it('answers a validation error with GRAPHQL_VALIDATION_FAILED, as over HTTP', async () => {
    const c = connect();
    await expect(collect(c, 'subscription { nope }', 1).done).rejects.toEqual([
      { message: 'Cannot query field "nope" on type "Subscription".', locations: [{ line: 1, column: 16 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } },
    ]);
  });

  it('answers a syntax error with GRAPHQL_PARSE_FAILED', async () => {
    const c = connect();
    await expect(collect(c, 'subscription { ', 1).done).rejects.toEqual([
      { message: 'Syntax Error: Expected Name, found <EOF>.', locations: [{ line: 1, column: 16 }], extensions: { code: 'GRAPHQL_PARSE_FAILED' } },
    ]);
  });

  it('applies the same complexity limits as HTTP', async () => {
    const deep = '{ node(id: "1") { child { child { child { child { id } } } } } }';
    const c = connect();
    const expected = [
      expect.objectContaining({ message: 'Query too complex: depth 6 is over the limit of 4', extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' }) }),
    ];
    await expect(collect(c, deep, 1).done).rejects.toEqual(expected);
    expect((await gql(h.url, deep)).body.errors).toEqual(expected);
  });

  it('counts WebSocket operations in /metrics', async () => {
    const c = connect();
    await collect(c, 'query OverWs { ok }', 1).done;
    const text = await (await fetch(`${h.origin}/metrics`)).text();
    expect(text).toContain('junction_graphql_operations_total{type="query",name="OverWs",outcome="success"} 1');
  });
});
