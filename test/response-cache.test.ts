/**
 * `server.responseCache` and `@invalidates`: real hubs against a real upstream (test/upstream.ts).
 * Each test asserts what reaches the upstream (calls counted) and what reaches the client (the
 * response text itself, byte for byte).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startHub, type TestHub } from './helpers.ts';
import { json, Upstream } from './upstream.ts';

const SDL = `
type User { id: Int! name: String! }
type Post {
  id: Int!
  title: String!
  user: User @http(connector: "api", path: "/users", query: [{ key: "id", value: "{parent.userId}" }], batchKey: "id") @cache(ttlMs: 60000)
}
type Profile { sub: String! seenAs: String! }
type Query {
  posts: [Post] @http(connector: "api", path: "/posts") @cache(ttlMs: 60000)
  post(id: Int!): Post @http(connector: "api", path: "/posts/{args.id}") @cache(ttlMs: 60000)
  fresh: [Post] @http(connector: "api", path: "/posts")
  counter: Int!
  me: Profile @http(connector: "api", path: "/me", headers: [{ key: "X-User", value: "{context.user.sub}" }]) @cache(ttlMs: 60000)
  broken: Post @http(connector: "api", path: "/broken") @cache(ttlMs: 60000)
}
input NewPost { title: String! }
input NewName { name: String! }
type Mutation {
  addPost(input: NewPost!): Post @http(connector: "api", method: POST, path: "/posts", body: "{args.input}") @invalidates(touches: ["Post"])
  rename(input: NewName!): User @http(connector: "api", method: POST, path: "/users", body: "{args.input}") @invalidates(touches: ["User.name"])
  untracked(input: NewPost!): Post @http(connector: "api", method: POST, path: "/posts", body: "{args.input}")
}
`;
const RESOLVERS = 'let n = 0; export default { Query: { counter: () => ++n } };';
const KEY_A = 'key-of-alice-0123456789';
const KEY_B = 'key-of-bob-0123456789ab';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Api {
  upstream: Upstream;
  h: TestHub;
  posts: { id: number; userId: number; title: string }[];
  users: Map<number, { id: number; name: string }>;
}

async function setup(server: Record<string, unknown> = {}): Promise<Api> {
  const posts = [
    { id: 1, userId: 1, title: 'first' },
    { id: 2, userId: 2, title: 'second' },
  ];
  const users = new Map([
    [1, { id: 1, name: 'Ann' }],
    [2, { id: 2, name: 'Bo' }],
  ]);
  const upstream = await new Upstream((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST' && url.pathname === '/posts') {
      const post = { id: posts.length + 1, userId: 1, ...(JSON.parse(req.body) as { title: string }) };
      posts.push(post);
      return json(res, 200, post);
    }
    if (req.method === 'POST' && url.pathname === '/users') {
      users.get(1)!.name = (JSON.parse(req.body || '{}') as { name?: string }).name ?? 'renamed';
      return json(res, 200, users.get(1));
    }
    if (url.pathname === '/posts') return json(res, 200, posts);
    if (url.pathname.startsWith('/posts/')) return json(res, 200, posts.find((p) => p.id === Number(url.pathname.slice(7))) ?? null);
    if (url.pathname === '/users') return json(res, 200, url.searchParams.getAll('id').map((id) => users.get(Number(id))));
    if (url.pathname === '/me') return json(res, 200, { sub: String(req.headers['x-user']), seenAs: `user ${String(req.headers['x-user'])}` });
    return json(res, 500, { error: 'broken' });
  }).start();
  cleanups.push(() => upstream.stop());
  const h = await startHub(
    { 'schema/api.graphql': SDL, 'resolvers/counter.mjs': RESOLVERS },
    {
      server,
      auth: { apiKeys: [{ key: KEY_A, sub: 'alice', roles: ['admin'] }, { key: KEY_B, sub: 'bob' }] },
      connectors: { api: { type: 'http', baseUrl: upstream.url, retry: { attempts: 0 } } },
    },
  );
  cleanups.push(() => h.stop());
  return { upstream, h, posts, users };
}

/** The response as the client reads it: status and the exact body text. */
async function post(h: TestHub, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}

const Q1 = '{ posts { id title user { id name } } }';

describe('whole-response cache', () => {
  it('a second identical query makes no upstream call and returns the same bytes', async () => {
    const { upstream, h } = await setup();
    const first = await post(h, Q1);
    expect(JSON.parse(first.text)).toEqual({
      data: { posts: [{ id: 1, title: 'first', user: { id: 1, name: 'Ann' } }, { id: 2, title: 'second', user: { id: 2, name: 'Bo' } }] },
    });
    expect(upstream.requests).toHaveLength(2); // /posts, then one batched /users
    const second = await post(h, Q1);
    expect(second).toEqual(first);
    expect(upstream.requests).toHaveLength(2);
    // Nor did it reach the connector's cache: its statistics did not move.
    const hub = await post(h, '{ hub { connector(name: "api") { cache { hits misses } } } }', undefined, { 'x-api-key': KEY_A });
    expect(JSON.parse(hub.text).data.hub.connector.cache).toEqual({ hits: 0, misses: 2 });
  });

  it('keys by variables and operation name', async () => {
    const { upstream, h } = await setup();
    const query = 'query One($id: Int!) { post(id: $id) { title } } query Two { posts { id } }';
    const body = (operationName: string, variables: unknown) => JSON.stringify({ query, operationName, variables });
    const send = async (operationName: string, variables: unknown) =>
      (await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(operationName, variables) })).json();
    expect(await send('One', { id: 1 })).toEqual({ data: { post: { title: 'first' } } });
    expect(await send('One', { id: 2 })).toEqual({ data: { post: { title: 'second' } } });
    expect(await send('One', { id: 1 })).toEqual({ data: { post: { title: 'first' } } });
    expect(await send('Two', null)).toEqual({ data: { posts: [{ id: 1 }, { id: 2 }] } });
    const calls = upstream.requests.length;
    expect(await send('One', { id: 2 })).toEqual({ data: { post: { title: 'second' } } });
    expect(await send('Two', null)).toEqual({ data: { posts: [{ id: 1 }, { id: 2 }] } });
    expect(upstream.requests).toHaveLength(calls);
  });

  it('runs a query again when a field has no cache hint (a connector field without cache, a code resolver)', async () => {
    const { upstream, h } = await setup();
    await post(h, '{ fresh { id } }');
    await post(h, '{ fresh { id } }');
    expect(upstream.to('/posts')).toHaveLength(2);
    expect(JSON.parse((await post(h, '{ counter posts { id } }')).text).data.counter).toBe(1);
    expect(JSON.parse((await post(h, '{ counter posts { id } }')).text).data.counter).toBe(2);
  });

  it('never stores a response with errors', async () => {
    const { upstream, h } = await setup();
    const first = JSON.parse((await post(h, '{ broken { id } }')).text);
    expect(first.errors[0].extensions.code).toBe('UPSTREAM_ERROR');
    await post(h, '{ broken { id } }');
    expect(upstream.to('/broken')).toHaveLength(2);
  });

  it('keeps a response that depends on the caller to that caller', async () => {
    const { upstream, h } = await setup();
    const alice = await post(h, '{ me { sub seenAs } }', undefined, { 'x-api-key': KEY_A });
    const bob = await post(h, '{ me { sub seenAs } }', undefined, { 'x-api-key': KEY_B });
    expect(JSON.parse(alice.text)).toEqual({ data: { me: { sub: 'alice', seenAs: 'user alice' } } });
    expect(JSON.parse(bob.text)).toEqual({ data: { me: { sub: 'bob', seenAs: 'user bob' } } });
    expect(await post(h, '{ me { sub seenAs } }', undefined, { 'x-api-key': KEY_A })).toEqual(alice);
    expect(await post(h, '{ me { sub seenAs } }', undefined, { 'x-api-key': KEY_B })).toEqual(bob);
    expect(upstream.to('/me')).toHaveLength(2);
  });

  it('answers each Accept header with its own content type', async () => {
    const { h } = await setup();
    const plain = await post(h, Q1);
    const graphql = await post(h, Q1, undefined, { accept: 'application/graphql-response+json' });
    expect(plain.contentType).toMatch(/^application\/json/);
    expect(graphql.contentType).toMatch(/^application\/graphql-response\+json/);
    expect(await post(h, Q1, undefined, { accept: 'application/graphql-response+json' })).toEqual(graphql);
  });

  it('is off with server.responseCache.enabled: false (the connector cache still answers)', async () => {
    const { upstream, h } = await setup({ responseCache: { enabled: false } });
    await post(h, Q1);
    await post(h, Q1);
    expect(upstream.requests).toHaveLength(2);
    const hub = await post(h, '{ hub { connector(name: "api") { cache { hits misses } } } }', undefined, { 'x-api-key': KEY_A });
    expect(JSON.parse(hub.text).data.hub.connector.cache).toEqual({ hits: 2, misses: 2 });
  });
});

describe('@invalidates', () => {
  it('a mutation declaring it touches Post drops the cached response and the cached upstream reads', async () => {
    const { upstream, h } = await setup();
    await post(h, Q1);
    await post(h, Q1);
    expect(upstream.requests).toHaveLength(2);
    const added = JSON.parse((await post(h, 'mutation { addPost(input: { title: "third" }) { id title } }')).text);
    expect(added).toEqual({ data: { addPost: { id: 3, title: 'third' } } });
    const after = JSON.parse((await post(h, Q1)).text);
    expect(after.data.posts.map((p: { title: string }) => p.title)).toEqual(['first', 'second', 'third']);
    expect(upstream.to('/posts').filter((r) => r.method === 'GET')).toHaveLength(2);
  });

  it('a mutation naming a field drops what selected it, and over WebSocket too', async () => {
    const { upstream, h } = await setup();
    expect(JSON.parse((await post(h, Q1)).text).data.posts[0].user.name).toBe('Ann');
    const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
    cleanups.push(() => client.dispose());
    const result = await new Promise((resolve, reject) => {
      let value: unknown;
      client.subscribe({ query: 'mutation { rename(input: { name: "Anna" }) { name } }' }, { next: (v) => (value = v), error: reject, complete: () => resolve(value) });
    });
    expect(result).toEqual({ data: { rename: { name: 'Anna' } } });
    expect(JSON.parse((await post(h, Q1)).text).data.posts[0].user.name).toBe('Anna');
    expect(upstream.to('/users').filter((r) => r.method === 'GET')).toHaveLength(2);
  });

  it('a mutation without @invalidates leaves the cache alone', async () => {
    const { upstream, h } = await setup();
    await post(h, Q1);
    await post(h, 'mutation { untracked(input: { title: "third" }) { id } }');
    const after = JSON.parse((await post(h, Q1)).text);
    expect(after.data.posts).toHaveLength(2);
    expect(upstream.to('/posts').filter((r) => r.method === 'GET')).toHaveLength(1);
  });

  it('refuses a name that is no type or field of the schema', async () => {
    await expect(
      startHub(
        { 'schema/api.graphql': 'type Query { a: Int } type Mutation { b: Int @invalidates(touches: ["Nope", "Query.nope"]) }', 'resolvers/r.mjs': 'export default { Mutation: { b: () => 1 } };' },
        {},
      ),
    ).rejects.toThrow(/Mutation.b @invalidates: no type or field "Nope"/);
  });
});
