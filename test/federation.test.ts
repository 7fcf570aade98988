// `server.federation: true` (SPEC §8): the hub as an Apollo Federation v2 subgraph. A second
// subgraph written here with @apollo/subgraph, composed with @apollo/composition and served by
// @apollo/gateway, queries the hub the way a router does; upstream calls are counted at a real
// upstream.
import path from 'node:path';
import { composeServices } from '@apollo/composition';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { builtinRegistry } from '../src/connector-registry.ts';
import { buildSchema, SchemaError } from '../src/schema.ts';
import { gql, project, runCli, startHub, type TestHub } from './helpers.ts';
import { json, Upstream } from './upstream.ts';

const SECRET = 'federation-test-secret-0123456789abcdef';
const token = (roles: string[]) =>
  new SignJWT({ roles }).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));

const people = Array.from({ length: 100 }, (_, i) => ({
  id: i + 1,
  name: `Person ${i + 1}`,
  email: `p${i + 1}@example.test`,
  secretNote: `note ${i + 1}`,
  address: { city: i % 2 ? 'Lyon' : 'Paris' },
}));

// Connector names, paths and templates the subgraph SDL must never show.
const HUB_SDL = `
"A person, from the people API."
type User @key(fields: "id") @tag(name: "public")
  @http(connector: "peopleApi", path: "/internal/v2/people", query: [{key: "id", value: "{parent.id}"}], batchKey: "id") {
  id: ID!
  name: String!
  email: String!
  address: Address
  bio: String @http(connector: "peopleApi", path: "/internal/v2/bios/{parent.id}", select: "text") @cache(ttlMs: 60000)
  secretNote: String @auth(requires: ["staff"])
  legacyId: ID @inaccessible
}
type Address @shareable { city: String! }
type Review @key(fields: "id") {
  id: ID!
  body: String! @external
  tone: String @requires(fields: "body")
    @http(connector: "peopleApi", path: "/internal/v2/tone", query: [{key: "text", value: "{parent.body}"}], select: "label")
}
type Team @key(fields: "id") { id: ID! name: String! }
type Query {
  users: [User!] @http(connector: "peopleApi", path: "/internal/v2/people")
}
type Mutation { greet(name: String!): String! }
type Subscription { greetings: String! }
`;

const HUB_RESOLVERS = `
export default {
  Team: { __resolveReference: (ref) => ({ id: ref.id, name: 'Team ' + ref.id }) },
  Mutation: { greet: async (_, { name }, { pubsub }) => { await pubsub.publish('GREETINGS', { greetings: 'hello ' + name }); return name; } },
  Subscription: { greetings: { subscribe: (_, __, { pubsub }) => pubsub.asyncIterableIterator('GREETINGS') } },
};
`;

// The other subgraph: owns Review, adds User.reviews, and needs User.name (the hub's) for signature.
const REVIEWS_SDL = parse(`
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@external", "@requires"])
type Review @key(fields: "id") { id: ID! body: String! author: User! }
type User @key(fields: "id") {
  id: ID!
  reviews: [Review!]!
  name: String! @external
  signature: String! @requires(fields: "name")
}
type Query { reviews(first: Int): [Review!]! }
`);
const reviews = people.map((p) => ({ id: `r${p.id}`, body: p.id % 2 ? `great read ${p.id}` : `fine ${p.id}`, authorId: String(p.id) }));
const reviewsResolvers = {
  Query: { reviews: (_: unknown, { first }: { first?: number | null }) => reviews.slice(0, first ?? undefined) },
  Review: { author: (r: { authorId: string }) => ({ __typename: 'User', id: r.authorId }) },
  User: {
    __resolveReference: (ref: { id: string; name?: string }) => ref,
    reviews: (u: { id: string }) => reviews.filter((r) => r.authorId === u.id),
    signature: (u: { name: string }) => `— ${u.name}`,
  },
};

let upstream: Upstream;
let h: TestHub;
let subgraphSdl: string;
let reviewsServer: ApolloServer;
let gatewayServer: ApolloServer;
let gatewayUrl: string;
let supergraphSdl: string;

const peopleCalls = () => upstream.to('/internal/v2/people');

beforeAll(async () => {
  upstream = await new Upstream((req, res) => {
    const url = new URL(req.url, 'http://upstream.invalid');
    if (url.pathname === '/internal/v2/people') {
      const ids = url.searchParams.getAll('id');
      return json(res, 200, ids.length > 0 ? people.filter((p) => ids.includes(String(p.id))) : people.slice(0, 5));
    }
    const bio = /^\/internal\/v2\/bios\/(\d+)$/.exec(url.pathname);
    if (bio) return json(res, 200, { text: `Bio of ${bio[1]}` });
    if (url.pathname === '/internal/v2/tone') return json(res, 200, { label: url.searchParams.get('text')?.includes('great') ? 'positive' : 'neutral' });
    json(res, 404, { error: 'not found' });
  }).start();
  h = await startHub(
    { 'schema/people.graphql': HUB_SDL, 'resolvers/people.mjs': HUB_RESOLVERS },
    {
      server: { federation: true, limits: { aliases: 5 } },
      auth: { jwt: { secret: '${JWT_SECRET}' } },
      connectors: { peopleApi: { type: 'http', baseUrl: upstream.url } },
    },
    { JWT_SECRET: SECRET },
  );
  // What a router's tooling does first (rover subgraph introspect): ask the subgraph for its SDL.
  const service = await gql(h.url, '{ _service { sdl } }');
  subgraphSdl = (service.body.data?._service as { sdl: string }).sdl;

  reviewsServer = new ApolloServer({
    schema: buildSubgraphSchema([{ typeDefs: REVIEWS_SDL, resolvers: reviewsResolvers as never }]),
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const reviewsUrl = (await startStandaloneServer(reviewsServer, { listen: { port: 0, host: '127.0.0.1' } })).url;
  const composed = composeServices([
    { name: 'junction', typeDefs: parse(subgraphSdl), url: h.url },
    { name: 'reviews', typeDefs: REVIEWS_SDL, url: reviewsUrl },
  ]);
  expect(composed.errors?.map((e) => e.message) ?? []).toEqual([]);
  supergraphSdl = composed.supergraphSdl!;
  gatewayServer = new ApolloServer({ gateway: new ApolloGateway({ supergraphSdl }) });
  gatewayUrl = (await startStandaloneServer(gatewayServer, { listen: { port: 0, host: '127.0.0.1' } })).url;
});

afterAll(async () => {
  await gatewayServer?.stop();
  await reviewsServer?.stop();
  await h?.stop();
  await upstream?.stop();
});

describe('the hub as a subgraph', () => {
  it('_entities for 100 representations of a type bound with @http + batchKey makes one upstream call', async () => {
    const before = peopleCalls().length;
    const representations = people.map((p) => ({ __typename: 'User', id: String(p.id) }));
    const r = await gql(h.url, 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id name email address { city } } } }', {
      r: [...representations, { __typename: 'User', id: '999' }],
    });
    expect(r.body.errors).toBeUndefined();
    const entities = r.body.data!._entities as ({ id: string; name: string } | null)[];
    expect(entities).toHaveLength(101);
    expect(entities[0]).toEqual({ id: '1', name: 'Person 1', email: 'p1@example.test', address: { city: 'Paris' } });
    expect(entities[99]).toMatchObject({ id: '100', name: 'Person 100' });
    // An id the upstream does not know: that entity is null, the others are unaffected.
    expect(entities[100]).toBeNull();
    const calls = peopleCalls().slice(before);
    expect(calls).toHaveLength(1);
    expect(new URL(calls[0]!.url, upstream.url).searchParams.getAll('id')).toHaveLength(101);
  });

  it('a type with __resolveReference in code resolves through it; a @key type with neither resolves representations as themselves', async () => {
    const r = await gql(
      h.url,
      '{ _entities(representations: [{__typename: "Team", id: "7"}, {__typename: "Review", id: "r1", body: "great stuff"}]) { ... on Team { id name } ... on Review { id tone } } }',
    );
    expect(r.body).toEqual({ data: { _entities: [{ id: '7', name: 'Team 7' }, { id: 'r1', tone: 'positive' }] } });
  });

  it('_service { sdl } shows the subgraph without connector names, paths, templates or the hub’s own API', () => {
    for (const kept of [
      '@link(url: "https://specs.apollo.dev/federation/v2.3"',
      'type User @key(fields: "id") @tag(name: "public")',
      'type Address @shareable',
      'body: String! @external',
      'tone: String @requires(fields: "body")',
      'legacyId: ID @inaccessible',
      '"""A person, from the people API."""',
      'greet(name: String!): String!',
      'greetings: String!',
    ]) {
      expect(subgraphSdl).toContain(kept);
    }
    for (const hidden of ['@http', 'peopleApi', '/internal', 'batchKey', '{parent', 'select', '@cache', '@auth', 'staff', 'KeyValue', 'HttpMethod', 'hub', 'Hub', 'ConnectorStatus', 'resetBreaker']) {
      expect(subgraphSdl).not.toContain(hidden);
    }
  });

  it('the management API, @auth, @cache and limits work on the hub’s own endpoint', async () => {
    const admin = { authorization: `Bearer ${await token(['admin'])}` };
    const status = await gql(h.url, '{ hub { connectors { name type healthy } } }', undefined, admin);
    expect(status.body).toEqual({ data: { hub: { connectors: [{ name: 'peopleApi', type: 'http', healthy: true }] } } });

    // @auth guards an entity's field fetched through _entities.
    const query = '{ _entities(representations: [{__typename: "User", id: "3"}]) { ... on User { name secretNote } } }';
    const anonymous = await gql(h.url, query);
    expect(anonymous.body.data).toEqual({ _entities: [{ name: 'Person 3', secretNote: null }] });
    expect(anonymous.body.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    const staff = await gql(h.url, query, undefined, { authorization: `Bearer ${await token(['staff'])}` });
    expect(staff.body).toEqual({ data: { _entities: [{ name: 'Person 3', secretNote: 'note 3' }] } });

    // @cache on an entity's field: the second request is served from the cache.
    const bio = '{ _entities(representations: [{__typename: "User", id: "5"}]) { ... on User { bio } } }';
    const before = upstream.to('/internal/v2/bios/5').length;
    for (let i = 0; i < 2; i++) expect((await gql(h.url, bio)).body).toEqual({ data: { _entities: [{ bio: 'Bio of 5' }] } });
    expect(upstream.to('/internal/v2/bios/5').length - before).toBe(1);

    // Limits (server.limits.aliases: 5) apply to what a router sends too.
    const aliases = Array.from({ length: 6 }, (_, i) => `a${i}: __typename`).join(' ');
    const limited = await gql(h.url, `{ ${aliases} }`);
    expect(limited.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('subscriptions keep working over graphql-ws on the hub’s endpoint', async () => {
    const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const received: unknown[] = [];
      const first = new Promise<void>((resolve, reject) => {
        client.subscribe({ query: 'subscription { greetings }' }, { next: (r) => void (received.push(r.data) && resolve()), error: reject, complete: () => undefined });
      });
      // The subscription is live once the server has it: publish until one arrives.
      await expect
        .poll(async () => {
          await gql(h.url, 'mutation { greet(name: "ada") }');
          return received.length;
        }, { timeout: 30_000, interval: 200 })
        .toBeGreaterThan(0);
      await first;
      expect(received[0]).toEqual({ greetings: 'hello ada' });
    } finally {
      await client.dispose();
    }
  });
});

describe('composed with another subgraph behind @apollo/gateway', () => {
  it('composes without errors, and the supergraph shows no connector detail either', () => {
    expect(supergraphSdl).toContain('join__graph(name: "junction"');
    for (const hidden of ['peopleApi', '/internal', '@http', 'hub: Hub']) expect(supergraphSdl).not.toContain(hidden);
  });

  it('joins reviews (the other subgraph’s) with their authors from the hub’s connector: one upstream call for 100 authors', async () => {
    const before = peopleCalls().length;
    const r = await gql(gatewayUrl, '{ reviews { id body author { id name email } } }');
    expect(r.body.errors).toBeUndefined();
    const list = r.body.data!.reviews as { id: string; author: { id: string; name: string; email: string } }[];
    expect(list).toHaveLength(100);
    expect(list[0]).toEqual({ id: 'r1', body: 'great read 1', author: { id: '1', name: 'Person 1', email: 'p1@example.test' } });
    expect(list[99]!.author).toEqual({ id: '100', name: 'Person 100', email: 'p100@example.test' });
    expect(peopleCalls().length - before).toBe(1);
  });

  it('the other way: the other subgraph’s field @requires the hub’s name; the hub’s field @requires the other’s body', async () => {
    let before = peopleCalls().length;
    const signed = await gql(gatewayUrl, '{ reviews(first: 10) { author { signature } } }');
    expect(signed.body.errors).toBeUndefined();
    expect(signed.body.data!.reviews).toEqual(people.slice(0, 10).map((p) => ({ author: { signature: `— ${p.name}` } })));
    expect(peopleCalls().length - before).toBe(1);

    const toneBefore = upstream.to('/internal/v2/tone').length;
    const toned = await gql(gatewayUrl, '{ reviews(first: 3) { id tone } }');
    expect(toned.body).toEqual({ data: { reviews: [{ id: 'r1', tone: 'positive' }, { id: 'r2', tone: 'neutral' }, { id: 'r3', tone: 'positive' }] } });
    expect(upstream.to('/internal/v2/tone').length - toneBefore).toBe(3);

    // The hub's root field, then the other subgraph's User.reviews.
    before = peopleCalls().length;
    const users = await gql(gatewayUrl, '{ users { name reviews { id } } }');
    expect(users.body.data!.users).toEqual(people.slice(0, 5).map((p) => ({ name: p.name, reviews: [{ id: `r${p.id}` }] })));
    expect(peopleCalls().length - before).toBe(1);
  });

  it('@inaccessible fields and the hub’s own API are not in the gateway’s schema', async () => {
    const r = await gql(gatewayUrl, '{ users { legacyId } }');
    expect(r.body.errors?.[0]?.message).toContain('Cannot query field "legacyId" on type "User"');
    const hub = await gql(gatewayUrl, '{ hub { version } }');
    expect(hub.body.errors?.[0]?.message).toContain('Cannot query field "hub" on type "Query"');
  });
});

describe('@sql entities', () => {
  const seed = [
    'CREATE TABLE products (upc TEXT PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL);',
    ...Array.from({ length: 100 }, (_, i) => `INSERT INTO products VALUES ('p${i + 1}', 'Product ${i + 1}', ${(i + 1) * 10});`),
  ].join('\n');
  let shop: TestHub;
  beforeAll(async () => {
    shop = await startHub(
      {
        'schema/shop.graphql': `
type Product @key(fields: "upc")
  @sql(connector: "warehouseDb", query: "SELECT upc, name, price FROM products WHERE upc IN (:parent.upc)", batchKey: "upc") {
  upc: ID!
  name: String!
  price: Int!
}`,
        'data/seed.sql': seed,
      },
      { server: { federation: true }, connectors: { warehouseDb: { type: 'sql', url: 'sqlite:data/shop.db', seed: 'data/seed.sql' } } },
    );
  });
  afterAll(() => shop?.stop());

  it('_entities for 100 representations runs one statement; _service { sdl } shows no SQL', async () => {
    const requests = async () => ((await gql(shop.url, '{ hub { connector(name: "warehouseDb") { requests } } }')).body.data!.hub as { connector: { requests: number } }).connector.requests;
    const before = await requests();
    const r = await gql(shop.url, 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { upc name price } } }', {
      r: Array.from({ length: 100 }, (_, i) => ({ __typename: 'Product', upc: `p${100 - i}` })),
    });
    expect(r.body.errors).toBeUndefined();
    const products = r.body.data!._entities as { upc: string; name: string; price: number }[];
    expect(products).toHaveLength(100);
    expect(products[0]).toEqual({ upc: 'p100', name: 'Product 100', price: 1000 });
    expect(products[99]).toEqual({ upc: 'p1', name: 'Product 1', price: 10 });
    expect((await requests()) - before).toBe(1);

    const sdl = ((await gql(shop.url, '{ _service { sdl } }')).body.data!._service as { sdl: string }).sdl;
    expect(sdl).toContain('type Product @key(fields: "upc")');
    for (const hidden of ['@sql', 'SELECT', 'products', 'warehouseDb', ':parent']) expect(sdl).not.toContain(hidden);
  });
});

describe('@graphql entities', () => {
  const operations: string[] = [];
  let remote: ApolloServer;
  let accounts: TestHub;
  beforeAll(async () => {
    remote = new ApolloServer({
      typeDefs: `
        enum Plan { FREE PRO }
        type Account { id: ID! handle: String! plan: Plan! }
        type Query { account(id: ID!): Account }`,
      resolvers: {
        Query: {
          account: (_: unknown, { id }: { id: string }) => {
            if (id === '13') throw new Error('account 13 is locked');
            return Number(id) <= 60 ? { id, handle: `@acct${id}`, plan: Number(id) % 2 ? 'PRO' : 'FREE' } : null;
          },
        },
      },
      plugins: [{ requestDidStart: async ({ request }) => void operations.push(request.query ?? '') }],
    });
    const url = (await startStandaloneServer(remote, { listen: { port: 0, host: '127.0.0.1' } })).url;
    accounts = await startHub(
      {
        'schema/accounts.graphql': `
enum Plan { FREE PRO }
type Account @key(fields: "id") @graphql(connector: "accountsGraph", field: "account") { id: ID! handle: String! plan: Plan! }`,
      },
      { server: { federation: true }, connectors: { accountsGraph: { type: 'graphql', url } } },
    );
  });
  afterAll(async () => {
    await accounts?.stop();
    await remote?.stop();
  });

  it('_entities for 50 representations is one remote operation; an unknown or failing one is null alone', async () => {
    const before = operations.length;
    const r = await gql(accounts.url, 'query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Account { id handle plan } } }', {
      r: [...Array.from({ length: 50 }, (_, i) => ({ __typename: 'Account', id: String(i + 1) })), { __typename: 'Account', id: '99' }],
    });
    const entities = r.body.data!._entities as ({ id: string; handle: string; plan: string } | null)[];
    expect(entities).toHaveLength(51);
    expect(entities[0]).toEqual({ __typename: 'Account', id: '1', handle: '@acct1', plan: 'PRO' });
    expect(entities[49]).toEqual({ __typename: 'Account', id: '50', handle: '@acct50', plan: 'FREE' });
    expect(entities[50]).toBeNull();
    expect(entities[12]).toBeNull();
    expect(r.body.errors).toEqual([expect.objectContaining({ path: ['_entities', 12], extensions: expect.objectContaining({ code: 'UPSTREAM_ERROR', connector: 'accountsGraph' }) })]);
    expect(r.body.errors![0]!.message).toContain('account 13 is locked');
    expect(operations.length - before).toBe(1);
    expect(operations.at(-1)).toContain('e50:account(id:$id_50)');

    const sdl = ((await gql(accounts.url, '{ _service { sdl } }')).body.data!._service as { sdl: string }).sdl;
    expect(sdl).toContain('type Account @key(fields: "id")');
    for (const hidden of ['@graphql', 'accountsGraph', 'GraphQLOperation']) expect(sdl).not.toContain(hidden);
  });
});

describe('what a user gets wrong', () => {
  async function problems(sdl: string, federation: boolean, resolvers = ''): Promise<string[]> {
    const { dir, remove } = project({ 'schema/s.graphql': sdl, ...(resolvers && { 'resolvers/r.mjs': resolvers }) });
    try {
      const error = await buildSchema({
        schema: [path.join(dir, 'schema/**/*.graphql')],
        resolvers: [path.join(dir, 'resolvers/**/*')],
        baseDir: dir,
        authEnabled: false,
        registry: builtinRegistry,
        connectors: { api: 'http' },
        federation,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SchemaError);
      return (error as SchemaError).problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
    } finally {
      remove();
    }
  }
  const bound = '@http(connector: "api", path: "/users", query: [{key: "id", value: "{parent.id}"}], batchKey: "id")';

  it('a binding directive on a type without @key, or without federation, names the type and where it is', async () => {
    expect(await problems(`type Query { a: Int }\ntype User ${bound} { id: ID! }`, true)).toEqual([
      'schema/s.graphql:2: User @http: a binding directive on a type resolves its federation entities, and User has no @key',
    ]);
    expect(await problems(`type Query { a: Int }\ntype User ${bound} { id: ID! }`, false)).toEqual([
      'schema/s.graphql:2: User @http: a binding directive on a type resolves federation entities; set server.federation: true in the config',
    ]);
  });

  it('@key without server.federation says what turns it on', async () => {
    expect(await problems('type Query { a: Int }\ntype User @key(fields: "id") { id: ID! }', false)).toEqual([
      'schema/s.graphql:2: Unknown directive "@key". Federation directives need server.federation: true in the config.',
    ]);
  });

  it('a binding directive beside __resolveReference, or on a key nobody resolves, is refused', async () => {
    const both = await problems(`type Query { a: Int }\ntype User @key(fields: "id") ${bound} { id: ID! }`, true, 'export default { User: { __resolveReference: (r) => r } };');
    expect(both).toEqual(['schema/s.graphql:2: User has both @http and a __resolveReference code resolver; remove one']);
    const unresolvable = await problems(`type Query { a: Int }\ntype User @key(fields: "id", resolvable: false) ${bound} { id: ID! }`, true);
    expect(unresolvable).toEqual([
      'schema/s.graphql:2: User @http: every @key of User has resolvable: false, so this subgraph resolves none of its entities; remove one or the other',
    ]);
  });

  it('federation problems come with their place in the SDL', async () => {
    expect(await problems('type Query { a: Int }\ntype User @key(fields: "nope") { id: ID! }', true)).toEqual([
      expect.stringMatching(/^schema\/s\.graphql:2: .*nope/),
    ]);
  });
});

describe('junction print-schema --federation', () => {
  it('prints exactly what _service { sdl } answers', async () => {
    const { dir, remove } = project({
      'junction.config.yaml': `server:\n  federation: true\nconnectors:\n  peopleApi:\n    type: http\n    baseUrl: http://127.0.0.1:9\n`,
      'schema/people.graphql': HUB_SDL,
      'resolvers/people.mjs': HUB_RESOLVERS,
    });
    try {
      const result = await runCli(['print-schema', '--federation'], { cwd: dir });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`${subgraphSdl}\n`);
    } finally {
      remove();
    }
  });
});
