/**
 * `server.execution`: a hub compiling queries with graphql-jit answers exactly as one running
 * graphql-js does (status, data, errors with their codes, paths and locations), for answers,
 * errors and null propagation alike. Both hubs are real, on one real upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from './helpers.ts';
import { json, Upstream } from './upstream.ts';

const SDL = `
type Item { id: ID! name: String! tags: [String!]! owner: Owner }
type Owner { id: ID! secret: String @auth(requires: ["admin"]) }
type Query {
  item(id: ID!): Item @http(connector: "api", path: "/items/{args.id}")
  items(first: Int = 2): [Item!]! @http(connector: "api", path: "/items")
  down: Item @http(connector: "api", path: "/down")
  nullName: Item
  nonNullList: [Item!]!
  bug: String
  refused: String
  count(n: Int!): Int
}
type Mutation { first: Int second: Int }
`;
const RESOLVERS = `
import { HubError } from 'junction';
let n = 0;
export default {
  Query: {
    nullName: () => ({ id: '9', name: null, tags: [] }),
    nonNullList: () => [{ id: '1', name: 'a', tags: [] }, null],
    bug: () => { throw new Error('secret detail'); },
    refused: () => { throw new HubError('BAD_USER_INPUT', 'no such thing'); },
    count: (_, { n }) => n,
  },
  Mutation: { first: () => ++n, second: () => ++n },
};
`;
const KEY = 'key-of-someone-0123456789';

let upstream: Upstream;
let jit: TestHub;
let graphqlJs: TestHub;

beforeAll(async () => {
  upstream = await new Upstream((req, res) => {
    const item = (id: string) => ({ id, name: `item ${id}`, tags: ['x'], owner: { id: `o${id}`, secret: 's' } });
    if (req.url === '/down') return json(res, 503, { error: 'down' });
    if (req.url.startsWith('/items/')) return json(res, 200, item(req.url.slice(7)));
    return json(res, 200, [item('1'), item('2')]);
  }).start();
  const start = (execution: string) =>
    startHub(
      { 'schema/s.graphql': SDL, 'resolvers/r.mjs': RESOLVERS },
      {
        server: { execution, responseCache: { enabled: false } },
        auth: { apiKeys: [{ key: KEY, sub: 'someone' }] },
        connectors: { api: { type: 'http', baseUrl: upstream.url, retry: { attempts: 0 }, breaker: { enabled: false } } },
      },
    );
  [jit, graphqlJs] = await Promise.all([start('jit'), start('graphql-js')]);
}, 60_000);

afterAll(async () => {
  await Promise.all([jit?.stop(), graphqlJs?.stop()]);
  await upstream?.stop();
});

async function ask(h: TestHub, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const CASES: [string, unknown, Record<string, string>?][] = [
  ['a connector field with nested objects', { query: '{ item(id: "7") { id name tags owner { id } } }' }],
  ['a list with a default argument, fragments and aliases', { query: 'query { a: items { ...F } b: items(first: 1) { id __typename } } fragment F on Item { name }' }],
  ['an upstream failure (UPSTREAM_ERROR, path, locations)', { query: '{ down { id } item(id: "1") { id } }' }],
  ['null in a non-null field propagates to the nullable parent', { query: '{ nullName { id name } }' }],
  ['null in a non-null list propagates to the root', { query: '{ nonNullList { id } bug }' }],
  ['a plain Error is masked as INTERNAL_SERVER_ERROR', { query: '{ bug }' }],
  ['a HubError keeps its code', { query: '{ refused count(n: 3) }' }],
  ['@auth without a caller: UNAUTHENTICATED', { query: '{ item(id: "1") { owner { secret } } }' }],
  ['@auth without the role: FORBIDDEN', { query: '{ item(id: "1") { owner { secret } } }' }, { 'x-api-key': KEY }],
  ['variables', { query: 'query Q($n: Int!) { count(n: $n) }', variables: { n: 5 } }],
  ['a variable of the wrong type (BAD_USER_INPUT, 400)', { query: 'query Q($n: Int!) { count(n: $n) }', variables: { n: 'five' } }],
  ['a missing variable', { query: 'query Q($n: Int!) { count(n: $n) }' }],
  ['@skip and @include with variables', { query: 'query Q($s: Boolean!) { item(id: "2") { id name @skip(if: $s) tags @include(if: $s) } }', variables: { s: true } }],
  ['an operation chosen by name', { query: 'query A { count(n: 1) } query B { count(n: 2) }', operationName: 'B' }],
  ['an unknown operation name', { query: 'query A { count(n: 1) }', operationName: 'C' }],
  ['a subscription over HTTP', { query: 'subscription { connectorStatus { event } }' }],
  ['mutation fields run in order', { query: 'mutation { a: first b: second c: first }' }],
];

describe('server.execution: jit answers as graphql-js does', () => {
  for (const [name, body, headers] of CASES) {
    it(name, async () => {
      const [fromJit, fromGraphqlJs] = [await ask(jit, body, headers), await ask(graphqlJs, body, headers)];
      expect(fromJit).toEqual(fromGraphqlJs);
    });
  }

  it('a document run twice (compiled once) answers the same', async () => {
    const query = { query: '{ items { id owner { id } } }' };
    const first = await ask(jit, query);
    expect(first.body).toEqual({ data: { items: [{ id: '1', owner: { id: 'o1' } }, { id: '2', owner: { id: 'o2' } }] } });
    expect(await ask(jit, query)).toEqual(first);
  });
});
