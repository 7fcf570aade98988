import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConfigError, parseConfig } from '../../src/config.ts';
import { builtinRegistry } from '../../src/connector-registry.ts';
import { buildSchema, SchemaError } from '../../src/schema.ts';
import { gql, project, ROOT, startHub, type TestHub } from '../../test/helpers.ts';
import { json, Upstream } from '../../test/upstream.ts';

interface Post { id: number; userId: number; title: string }
interface User { id: number; name: string; email: string }
const data = JSON.parse(readFileSync(path.join(ROOT, 'demo/data/jsonplaceholder.json'), 'utf8')) as { posts: Post[]; users: User[] };

/** The benchmark's upstream: GET /posts, /users/:id, /users?id=1&id=2… */
function jsonplaceholder(): Upstream {
  return new Upstream((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/posts') return json(res, 200, data.posts);
    const one = /^\/users\/(\d+)$/.exec(url.pathname);
    if (one) {
      const user = data.users.find((u) => u.id === Number(one[1]));
      return user ? json(res, 200, user) : json(res, 404, { message: 'no such user' });
    }
    if (url.pathname === '/users') {
      const ids = url.searchParams.getAll('id').map(Number);
      return json(res, 200, data.users.filter((u) => ids.includes(u.id)));
    }
    if (url.pathname.startsWith('/echo')) return json(res, 200, { method: req.method, url: req.url, headers: req.headers, body: req.body ? JSON.parse(req.body) : null });
    if (url.pathname === '/wrapped') return json(res, 200, { data: { items: [{ id: 1, name: 'a' }] } });
    if (url.pathname === '/moved') {
      res.writeHead(302, { location: '/wrapped' });
      return void res.end();
    }
    if (url.pathname === '/big') return json(res, 200, { blob: 'x'.repeat(4096) });
    if (url.pathname === '/html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return void res.end('<html>maintenance</html>');
    }
    json(res, 404, { message: 'not found' });
  });
}

const SDL = `
type Post {
  id: ID!
  userId: ID!
  title: String!
  "All the posts' users in one call: /users?id=1&id=2…"
  user: User @http(connector: "api", path: "/users", query: [{key: "id", value: "{parent.userId}"}], batchKey: "id")
}
type PostN1 {
  id: ID!
  userId: ID!
  title: String!
  "One call per distinct user: /users/1, /users/2, …"
  user: User @http(connector: "api", path: "/users/{parent.userId}")
}
type Article {
  id: ID!
  userId: ID!
  "Batched on the fragile connector, cached, served stale while its breaker is open."
  author: User
    @cache(ttlMs: 50, staleIfOpen: true)
    @http(connector: "fragile", path: "/users", query: [{key: "id", value: "{parent.userId}"}], batchKey: "id")
}
type User { id: ID! name: String! email: String! }
type Echo { method: String! url: String! headers: EchoHeaders body: EchoBody }
type EchoHeaders { tenant: String, authorization: String }
type EchoBody { name: String tags: [String!] }
type Item { id: ID! name: String! }
input NewThing { name: String!, tags: [String!] }

type Query {
  posts: [Post!]! @http(connector: "api", path: "/posts")
  articles: [Article!]! @http(connector: "api", path: "/posts")
  postsN1: [PostN1!]! @http(connector: "api", path: "/posts")
  user(id: ID!): User @http(connector: "api", path: "/users/{args.id}")
  echo(segment: String!, q: String, tenant: String): Echo
    @http(connector: "api", path: "/echo/{args.segment}", query: [{key: "q", value: "{args.q}"}], headers: [{key: "tenant", value: "{args.tenant}"}])
  items: [Item!]! @http(connector: "api", path: "/wrapped", select: "data.items")
  html: String @http(connector: "api", path: "/html")
  moved: [Item!] @http(connector: "api", path: "/moved", select: "data.items")
  movedFollowed: [Item!] @http(connector: "follow", path: "/moved", select: "data.items")
  big: String @http(connector: "small", path: "/big", select: "blob")
  ok: String
}
type Mutation {
  create(input: NewThing!): Echo @http(connector: "api", method: POST, path: "/echo", body: "{args.input}")
}
`;

let upstream: Upstream;
/** The users API behind the "fragile" connector (its breaker opens after 2 failed calls). */
let users: Upstream;
let h: TestHub;
beforeAll(async () => {
  upstream = await jsonplaceholder().start();
  users = await jsonplaceholder().start();
  h = await startHub(
    { 'schema/api.graphql': SDL, 'resolvers/ok.mjs': "export default { Query: { ok: () => 'fine' } };" },
    {
      connectors: {
        api: { type: 'http', baseUrl: `${upstream.url}/`, retry: { attempts: 0 } },
        follow: { type: 'http', baseUrl: upstream.url, followRedirects: true },
        small: { type: 'http', baseUrl: upstream.url, maxResponseBytes: 1024 },
        fragile: { type: 'http', baseUrl: users.url, retry: { attempts: 0 }, breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 } },
      },
    },
  );
});
afterAll(async () => {
  await h.stop();
  await upstream.stop();
  await users.stop();
});

describe('@http', () => {
  it('posts with their users make exactly 2 upstream calls with batchKey (the benchmark query)', async () => {
    upstream.requests.length = 0;
    const r = await gql(h.url, '{ posts { id title user { id name } } }');
    expect(r.body.errors).toBeUndefined();
    const posts = r.body.data!.posts as { id: string; title: string; user: { id: string; name: string } }[];
    expect(posts).toHaveLength(100);
    for (const post of posts) {
      const source = data.posts.find((p) => String(p.id) === post.id)!;
      expect(post.title).toBe(source.title);
      expect(post.user).toEqual({ id: String(source.userId), name: data.users.find((u) => u.id === source.userId)!.name });
    }
    expect(upstream.requests.map((q) => q.url)).toEqual(['/posts', `/users?${data.users.map((u) => `id=${u.id}`).join('&')}`]);
    // One batch of the 10 distinct user ids (DataLoader dedupes the 100 keys).
    const metrics = await (await fetch(`${h.origin}/metrics`)).text();
    expect(metrics).toContain('junction_dataloader_batch_size_sum{connector="api",field="Post.user"} 10\n');
    expect(metrics).toContain('junction_dataloader_batch_size_count{connector="api",field="Post.user"} 1\n');
  });

  it('without batchKey, identical calls are still made once: 1 + 10 calls for 100 posts', async () => {
    upstream.requests.length = 0;
    const r = await gql(h.url, '{ postsN1 { id user { name } } }');
    expect(r.body.errors).toBeUndefined();
    expect(upstream.to('/posts')).toHaveLength(1);
    expect(upstream.requests.filter((q) => q.url.startsWith('/users/'))).toHaveLength(10);
    expect(upstream.requests).toHaveLength(11);
  });

  it('resolves a missing batch item to null, not an error', async () => {
    const saved = upstream.handler;
    upstream.handler = (req, res) => (req.url === '/posts' ? json(res, 200, [{ id: 1, userId: 99, title: 't' }]) : saved(req, res));
    try {
      const r = await gql(h.url, '{ posts { id user { id } } }');
      expect(r.body).toEqual({ data: { posts: [{ id: '1', user: null }] } });
    } finally {
      upstream.handler = saved;
    }
  });

  it('answers a batchKey call that does not answer a list with UPSTREAM_ERROR on every batched field; siblings resolve', async () => {
    const saved = upstream.handler;
    upstream.handler = (req, res) => {
      if (req.url === '/posts') return json(res, 200, [{ id: 1, userId: 1, title: 'a' }, { id: 2, userId: 2, title: 'b' }, { id: 3, userId: 1, title: 'c' }]);
      if (req.url.startsWith('/users?')) return json(res, 200, { users: data.users.slice(0, 2) });
      saved(req, res);
    };
    upstream.requests.length = 0;
    try {
      const r = await gql(h.url, '{ ok posts { id title user { name } } }');
      expect(r.body.data).toEqual({
        ok: 'fine',
        posts: [
          { id: '1', title: 'a', user: null },
          { id: '2', title: 'b', user: null },
          { id: '3', title: 'c', user: null },
        ],
      });
      const error = (i: number) => ({
        message: 'Post.user: a batchKey call must answer a list, got object',
        locations: [{ line: 1, column: 23 }],
        path: ['posts', i, 'user'],
        extensions: { code: 'UPSTREAM_ERROR', connector: 'api' },
      });
      expect(r.body.errors).toEqual([error(0), error(1), error(2)]);
      // One batch for the two distinct users.
      expect(upstream.requests.map((q) => q.url)).toEqual(['/posts', '/users?id=1&id=2']);
    } finally {
      upstream.handler = saved;
    }
  });

  it('a batch served stale while the breaker is open names every parent in extensions.stale', async () => {
    const query = '{ ok articles { id author { name } } }';
    const authors = data.posts.map((p) => ({ id: String(p.id), author: { name: data.users.find((u) => u.id === p.userId)!.name } }));
    // Warm the cache: the 100 articles' authors are one batch call.
    expect((await gql(h.url, query)).body).toEqual({ data: { ok: 'fine', articles: authors } });
    expect(users.requests).toHaveLength(1);
    await sleep(80); // past the 50 ms TTL

    const saved = users.handler;
    users.handler = (_req, res) => json(res, 500, { message: 'users down' });
    try {
      // Expired and the breaker closed: the failure shows, on every article. Two failures open it.
      for (let i = 0; i < 2; i++) {
        const failed = await gql(h.url, query);
        expect(failed.body.data!.articles).toEqual(authors.map((a) => ({ ...a, author: null })));
        expect(failed.body.errors).toHaveLength(100);
        expect(failed.body.errors![0]).toMatchObject({ path: ['articles', 0, 'author'], extensions: { code: 'UPSTREAM_ERROR', connector: 'fragile', status: 500 } });
        expect(failed.body.extensions).toBeUndefined();
      }
      const state = await gql(h.url, '{ hub { connector(name: "fragile") { breaker { state } } } }');
      expect(state.body.data).toEqual({ hub: { connector: { breaker: { state: 'OPEN' } } } });

      const stale = await gql(h.url, query);
      expect(stale.body.errors).toBeUndefined();
      expect(stale.body.data).toEqual({ ok: 'fine', articles: authors });
      const marks = (stale.body.extensions!.stale as { path: (string | number)[]; connector: string }[])
        .slice()
        .sort((a, b) => (a.path[1] as number) - (b.path[1] as number));
      expect(marks).toEqual(authors.map((_, i) => ({ path: ['articles', i, 'author'], connector: 'fragile' })));
      // The open breaker made no call.
      expect(users.requests).toHaveLength(3);
    } finally {
      users.handler = saved;
    }
  });

  it('fills path, query and header templates; URL-encodes values; the path cannot leave baseUrl', async () => {
    upstream.requests.length = 0;
    const r = await gql(h.url, '{ a: echo(segment: "../admin", q: "x&y=1", tenant: "acme") { url headers { tenant } } b: echo(segment: "http://evil.example/") { url } }');
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data).toEqual({
      a: { url: '/echo/..%2Fadmin?q=x%26y%3D1', headers: { tenant: 'acme' } },
      b: { url: '/echo/http%3A%2F%2Fevil.example%2F?q=' },
    });
    expect(upstream.requests.every((q) => q.url.startsWith('/echo/'))).toBe(true);
  });

  it('sends a body template as JSON, and selects into the response', async () => {
    const r = await gql(h.url, 'mutation { create(input: { name: "n", tags: ["a", "b"] }) { method body { name tags } } }');
    expect(r.body).toEqual({ data: { create: { method: 'POST', body: { name: 'n', tags: ['a', 'b'] } } } });
    expect((await gql(h.url, '{ items { id name } }')).body).toEqual({ data: { items: [{ id: '1', name: 'a' }] } });
  });

  it('answers HTML instead of JSON with UPSTREAM_ERROR, siblings intact', async () => {
    const r = await gql(h.url, '{ ok html }');
    expect(r.body.data).toEqual({ ok: 'fine', html: null });
    expect(r.body.errors).toEqual([
      {
        message: `GET ${upstream.url}/html answered text/html, not JSON`,
        locations: [{ line: 1, column: 6 }],
        path: ['html'],
        extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 200 },
      },
    ]);
  });

  it('answers an upstream 404 with UPSTREAM_ERROR carrying the status and the upstream message', async () => {
    const r = await gql(h.url, '{ user(id: "999") { name } }');
    expect(r.body.data).toEqual({ user: null });
    expect(r.body.errors?.[0]).toMatchObject({
      message: `GET ${upstream.url}/users/999 answered 404: no such user`,
      extensions: { code: 'UPSTREAM_ERROR', connector: 'api', status: 404 },
    });
  });
});

describe('http connector limits', () => {
  it('does not follow redirects unless followRedirects is on', async () => {
    const r = await gql(h.url, '{ moved { id } movedFollowed { id } }');
    expect(r.body.data).toEqual({ moved: null, movedFollowed: [{ id: '1' }] });
    expect(r.body.errors).toMatchObject([
      { path: ['moved'], message: `GET ${upstream.url}/moved answered 302 (a redirect; set followRedirects to follow it)`, extensions: { code: 'UPSTREAM_ERROR', status: 302 } },
    ]);
  });

  it('refuses a response over maxResponseBytes', async () => {
    const r = await gql(h.url, '{ big }');
    expect(r.body.errors).toMatchObject([
      { path: ['big'], message: `GET ${upstream.url}/big answered more than 1024 bytes`, extensions: { code: 'UPSTREAM_ERROR', connector: 'small', status: 200 } },
    ]);
  });
});

describe('http connector configuration', () => {
  it('names each bad key of a connector with its path', async () => {
    const problems = async (connector: Record<string, unknown>) => {
      try {
        await parseConfig({ connectors: { crm: connector } }, { file: 'junction.config.yaml', baseDir: '/tmp' });
        return [];
      } catch (error) {
        return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    expect(await problems({ type: 'http', baseUrl: 'ftp://x', retry: { attempts: 'x' }, timeoutMs: -1, color: 'red' })).toEqual([
      'connectors.crm.timeoutMs: expected a positive integer, got -1',
      'connectors.crm.retry.attempts: expected a whole number of 0 or more, got "x"',
      'connectors.crm.baseUrl: expected an http:// or https:// URL, got "ftp://x"',
      'connectors.crm.color: unknown key',
    ]);
    expect(await problems({ type: 'http' })).toEqual(['connectors.crm.baseUrl: expected an http:// or https:// URL, got nothing']);
    expect(await problems({ type: 'http', baseUrl: 'http://x', auth: { type: 'bearer', token: 'hunter2-token', extra: 1 } })).toEqual([
      'connectors.crm.auth.extra: unknown key',
    ]);
  });
});

describe('@http problems found at build time (junction check and start-up)', () => {
  async function problems(sdl: string, connectors: Record<string, string> = { api: 'http', other: 'graphql' }) {
    const { dir, remove } = project({ 'schema/a.graphql': sdl });
    try {
      await buildSchema({ schema: [`${dir}/schema/**/*.graphql`], resolvers: [], baseDir: dir, authEnabled: false, registry: builtinRegistry, connectors });
      return [];
    } catch (error) {
      if (!(error instanceof SchemaError)) throw error;
      return error.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);
    }
  }

  it('names an unknown connector, a wrong type, and a template naming a missing argument', async () => {
    expect(
      await problems(`type Query {
  a: String @http(connector: "crm", path: "/a")
  b(id: ID): String @http(connector: "api", path: "/b/{args.idd}")
  c: String @http(connector: "other", path: "/c")
}`),
    ).toEqual([
      'schema/a.graphql:2:3: Query.a @http: no connector named "crm" is configured (configured: api, other)',
      'schema/a.graphql:3:3: Query.b @http: {args.idd} names an argument the field does not have (arguments: id)',
      'schema/a.graphql:4:3: Query.c @http: connector "other" is of type graphql, not http',
    ]);
  });

  it('checks batchKey needs one varying query entry', async () => {
    expect(await problems('type Query { a(x: ID): [String] @http(connector: "api", path: "/a", batchKey: "id") }')).toEqual([
      'schema/a.graphql:1:14: Query.a @http: batchKey needs exactly one query entry with a placeholder, the key to repeat (found 0)',
    ]);
  });

  it('refuses a directive on a field that also has a code resolver', async () => {
    const { dir, remove } = project({
      'schema/a.graphql': 'type Query { a: String @http(connector: "api", path: "/a") }',
      'resolvers/r.mjs': 'export default { Query: { a: () => "x" } };',
    });
    try {
      await expect(buildSchema({ schema: [`${dir}/schema/**/*.graphql`], resolvers: [`${dir}/resolvers/*`], baseDir: dir, authEnabled: false, registry: builtinRegistry, connectors: { api: 'http' } })).rejects.toThrow(
        'schema/a.graphql:1:14: Query.a has both @http and a code resolver; remove one',
      );
    } finally {
      remove();
    }
  });
});
