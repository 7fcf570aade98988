// Machine clients with `auth.apiKeys`: keys from the environment, sent as X-API-Key (HTTP) or
// `apiKey` (graphql-ws connection params); the caller reaches templates and cache keys, and one
// caller's cached answer never reaches another.
import { createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError, formatProblem, parseConfig } from '../src/config.ts';
import { gql, ROOT, startHub, type TestHub } from './helpers.ts';
import { Upstream } from './upstream.ts';

const KEY_A = 'key-a-0123456789abcdef0123456789';
const KEY_B = 'key-b-fedcba9876543210fedcba9876';
const SECRET = 'api-keys-jwt-secret-0123456789abcdef';

const sdl = `
type Query {
  whoami: String!
  "The upstream's answer for the caller: the hub sends the caller's sub in the path and a header."
  profile: Profile @http(connector: "api", path: "/profiles/{context.user.sub}", headers: [{ key: "X-Caller", value: "{context.user.sub}" }])
  "A code resolver cached per caller."
  balance: String @cache(ttlMs: 60000)
  reports: [String!] @auth(requires: ["reporting"])
}
type Profile { owner: String! secret: String! }
type Subscription { me: String! }
`;

const resolvers = `
let calls = 0;
export default {
  Query: {
    whoami: (_, __, { user }) => user ? user.sub + '|' + user.id + '|' + user.roles.join(',') + '|' + JSON.stringify(user.claims.apiKey ?? null) : 'anonymous',
    balance: (_, __, { user }) => 'balance of ' + (user?.sub ?? 'nobody') + ' #' + ++calls,
    reports: () => ['q1'],
  },
  Subscription: { me: { subscribe: async function* (_, __, { user }) { yield { me: user ? user.sub : 'anonymous' }; } } },
};
`;

let upstream: Upstream;
let h: TestHub;
beforeAll(async () => {
  upstream = await new Upstream((req, res) => {
    const owner = req.url.split('/').at(-1);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ owner, secret: `private data of ${req.headers['x-caller']}` }));
  }).start();
  h = await startHub(
    { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers },
    {
      auth: {
        jwt: { secret: '${JWT_SECRET}' },
        apiKeys: [
          { key: '${KEY_A}', sub: 'svc-a', roles: ['reporting'] },
          { key: '${KEY_B}', sub: 'svc-b' },
        ],
      },
      connectors: { api: { type: 'http', baseUrl: upstream.url, cache: { ttlMs: 60_000 } } },
    },
    { KEY_A, KEY_B, JWT_SECRET: SECRET },
  );
}, 60_000);
afterAll(async () => {
  await h?.stop();
  await upstream?.stop();
});

const token = (sub: string, roles: string[] = []) =>
  new SignJWT({ roles }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));

describe('auth.apiKeys over HTTP', () => {
  it('makes a key its subject with its roles; the key itself is nowhere in the user', async () => {
    const r = await gql(h.url, '{ whoami reports }', undefined, { 'x-api-key': KEY_A });
    expect(r.body).toEqual({ data: { whoami: 'svc-a|svc-a|reporting|true', reports: ['q1'] } });
  });

  it('refuses a wrong key with 401 UNAUTHENTICATED, never echoing it', async () => {
    const wrong = `${KEY_A.slice(0, -1)}X`;
    const r = await gql(h.url, '{ whoami }', undefined, { 'x-api-key': wrong });
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ errors: [{ message: 'Invalid API key', extensions: { code: 'UNAUTHENTICATED' } }] });
    // A prefix of a real key, an empty key and a much longer one are all just wrong.
    for (const key of [KEY_A.slice(0, 8), '', KEY_A + KEY_A]) {
      const again = await gql(h.url, '{ whoami }', undefined, { 'x-api-key': key });
      expect(again.status).toBe(401);
      expect(again.body.errors?.[0]?.message).toBe('Invalid API key');
    }
  });

  it('checks roles for key callers like for token callers', async () => {
    const r = await gql(h.url, '{ reports }', undefined, { 'x-api-key': KEY_B });
    expect(r.body).toEqual({
      data: { reports: null },
      errors: [{ message: 'Requires the role reporting', locations: [{ line: 1, column: 3 }], path: ['reports'], extensions: { code: 'FORBIDDEN' } }],
    });
  });

  it('lets the bearer token win when a request sends both', async () => {
    const r = await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_A, authorization: `Bearer ${await token('alice', ['x'])}` });
    expect(r.body).toEqual({ data: { whoami: 'alice|alice|x|null' } });
    // …even a bad one: the key does not rescue an invalid token.
    const bad = await gql(h.url, '{ whoami }', undefined, { 'x-api-key': KEY_A, authorization: 'Bearer nope' });
    expect(bad.status).toBe(401);
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('keeps anonymous callers anonymous when auth is not required', async () => {
    expect((await gql(h.url, '{ whoami }')).body).toEqual({ data: { whoami: 'anonymous' } });
  });

  it('never writes a key to the log', async () => {
    await gql(h.url, '{ whoami }', undefined, { 'x-api-key': 'not-a-real-key-but-logged?' });
    expect(h.rawLogs()).not.toContain(KEY_A);
    expect(h.rawLogs()).not.toContain(KEY_B);
  });
});

describe('the caller reaches templates and cache keys', () => {
  it('sends {context.user.sub} upstream, and caches each caller apart', async () => {
    const a1 = await gql(h.url, '{ profile { owner secret } }', undefined, { 'x-api-key': KEY_A });
    expect(a1.body).toEqual({ data: { profile: { owner: 'svc-a', secret: 'private data of svc-a' } } });
    expect(upstream.to('/profiles/svc-a').map((r) => r.headers['x-caller'])).toEqual(['svc-a']);

    const b1 = await gql(h.url, '{ profile { owner secret } }', undefined, { 'x-api-key': KEY_B });
    expect(b1.body).toEqual({ data: { profile: { owner: 'svc-b', secret: 'private data of svc-b' } } });

    // Both answers are now cached: each caller gets its own again, without a new upstream call.
    const a2 = await gql(h.url, '{ profile { owner secret } }', undefined, { 'x-api-key': KEY_A });
    const b2 = await gql(h.url, '{ profile { owner secret } }', undefined, { 'x-api-key': KEY_B });
    expect(a2.body).toEqual(a1.body);
    expect(b2.body).toEqual(b1.body);
    expect(upstream.requests.map((r) => r.url)).toEqual(['/profiles/svc-a', '/profiles/svc-b']);
  });

  it('caches an @cache field per caller: API key, token and anonymous callers each get their own', async () => {
    const a1 = await gql(h.url, '{ balance }', undefined, { 'x-api-key': KEY_A });
    const b1 = await gql(h.url, '{ balance }', undefined, { 'x-api-key': KEY_B });
    const t1 = await gql(h.url, '{ balance }', undefined, { authorization: `Bearer ${await token('svc-a-lookalike')}` });
    const anon = await gql(h.url, '{ balance }');
    expect([a1, b1, t1, anon].map((r) => r.body.data?.balance)).toEqual([
      'balance of svc-a #1',
      'balance of svc-b #2',
      'balance of svc-a-lookalike #3',
      'balance of nobody #4',
    ]);
    const a2 = await gql(h.url, '{ balance }', undefined, { 'x-api-key': KEY_A });
    const b2 = await gql(h.url, '{ balance }', undefined, { 'x-api-key': KEY_B });
    expect([a2.body.data?.balance, b2.body.data?.balance]).toEqual(['balance of svc-a #1', 'balance of svc-b #2']);
  });
});

describe('auth.apiKeys over graphql-ws', () => {
  const subscribeOnce = (connectionParams: Record<string, unknown>) =>
    new Promise<{ result?: unknown; closed?: number }>((resolve) => {
      const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {}, connectionParams, on: { closed: (e) => resolve({ closed: (e as { code: number }).code }) } });
      client.subscribe({ query: 'subscription { me }' }, {
        next: (result) => {
          resolve({ result });
          void client.dispose();
        },
        error: () => {},
        complete: () => {},
      });
    });

  it('takes apiKey from the connection params', async () => {
    expect(await subscribeOnce({ apiKey: KEY_B })).toEqual({ result: { data: { me: 'svc-b' } } });
  });

  it('closes a connection with a wrong apiKey with 4403', async () => {
    expect(await subscribeOnce({ apiKey: 'wrong-key-wrong-key-wrong' })).toEqual({ closed: 4403 });
  });
});

describe('a hub with API keys only', () => {
  let keysOnly: TestHub;
  beforeAll(async () => {
    keysOnly = await startHub(
      { 'schema/s.graphql': 'type Query { whoami: String! }', 'resolvers/r.mjs': 'export default { Query: { whoami: (_, __, { user }) => user?.sub ?? "anonymous" } }' },
      { auth: { apiKeys: [{ key: '${KEY_A}', sub: 'svc-a' }], required: true } },
      { KEY_A },
    );
  }, 60_000);
  afterAll(() => keysOnly?.stop());

  it('requires a key, and refuses a bearer token it has no way to check', async () => {
    expect((await gql(keysOnly.url, '{ whoami }', undefined, { 'x-api-key': KEY_A })).body).toEqual({ data: { whoami: 'svc-a' } });
    const none = await gql(keysOnly.url, '{ whoami }');
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ errors: [{ message: 'Authentication required', extensions: { code: 'UNAUTHENTICATED' } }] });
    const bearer = await gql(keysOnly.url, '{ whoami }', undefined, { authorization: `Bearer ${await token('alice')}` });
    expect(bearer.status).toBe(401);
    expect(bearer.body.errors?.[0]?.message).toBe('Bearer tokens are not accepted here (auth.jwt is not configured); send X-API-Key');
  });
});

describe('auth.apiKeys in the config', () => {
  const problems = async (auth: unknown) => {
    try {
      await parseConfig({ auth }, { file: 'junction.config.yaml', baseDir: ROOT, env: {} });
      return [];
    } catch (error) {
      return (error as ConfigError).problems.map(formatProblem);
    }
  };

  it('refuses short and repeated keys without showing them, and an auth block with neither jwt nor keys', async () => {
    expect(await problems({ apiKeys: [{ key: 'short-key', sub: 'a' }] })).toEqual([
      'junction.config.yaml: auth.apiKeys.0.key: expected an API key of at least 16 characters, got [REDACTED]',
    ]);
    expect(await problems({ apiKeys: [{ key: KEY_A, sub: 'a' }, { key: KEY_A, sub: 'b' }] })).toEqual([
      'junction.config.yaml: auth.apiKeys: expected every API key to be different',
    ]);
    expect(await problems({ required: true })).toEqual(['junction.config.yaml: auth: expected jwt, apiKeys or both']);
  });
});
