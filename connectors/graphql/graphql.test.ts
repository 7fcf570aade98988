import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { GraphQLError } from 'graphql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { builtinRegistry } from '../../src/connector-registry.ts';
import { buildSchema, SchemaError } from '../../src/schema.ts';
import { gql, project, startHub, type TestHub } from '../../test/helpers.ts';

// ---- the remote: a real Apollo Server on 127.0.0.1 -----------------------------------------

const REMOTE_SDL = `#graphql
enum Role { ADMIN MEMBER }
input PostInput { title: String!, authorId: ID! }
type User {
  id: ID!
  name: String!
  role: Role!
  avatar(size: Int!): String!
  posts(first: Int): [Post!]!
  secret: String
  badge: String!
}
type Post { id: ID!, title: String!, author: User! }
union SearchResult = User | Post
type Query {
  user(id: ID!): User
  users(role: Role, first: Int): [User!]!
  search(text: String!): [SearchResult!]!
  boom: String
  slow: String
}
type Mutation { createPost(input: PostInput!): Post! }
`;

interface RemoteUser { id: string; name: string; role: 'ADMIN' | 'MEMBER' }
interface RemotePost { id: string; title: string; authorId: string }

const users: RemoteUser[] = [
  { id: '1', name: 'Ada', role: 'ADMIN' },
  { id: '2', name: 'Bob', role: 'MEMBER' },
  { id: '3', name: 'Cy', role: 'MEMBER' },
];
const posts: RemotePost[] = [
  { id: 'p1', title: 'Engines', authorId: '1' },
  { id: 'p2', title: 'Notes', authorId: '1' },
  { id: 'p3', title: 'Bridges', authorId: '2' },
];

const remoteResolvers = {
  Query: {
    user: (_: unknown, { id }: { id: string }) => users.find((u) => u.id === id) ?? null,
    users: (_: unknown, { role, first }: { role?: string; first?: number }) =>
      users.filter((u) => !role || u.role === role).slice(0, first ?? undefined),
    search: (_: unknown, { text }: { text: string }) => [
      ...users.filter((u) => u.name.includes(text)).map((u) => ({ ...u, __typename: 'User' })),
      ...posts.filter((p) => p.title.includes(text)).map((p) => ({ ...p, __typename: 'Post' })),
    ],
    boom: () => {
      throw new Error('remote exploded');
    },
    slow: () => new Promise((resolve) => setTimeout(() => resolve('late'), 1500)),
  },
  Mutation: {
    createPost: (_: unknown, { input }: { input: { title: string; authorId: string } }) => {
      const post = { id: `p${posts.length + 1}`, title: input.title, authorId: input.authorId };
      posts.push(post);
      return post;
    },
  },
  User: {
    avatar: (u: RemoteUser, { size }: { size: number }) => `https://img.example/${u.id}?s=${size}`,
    posts: (u: RemoteUser, { first }: { first?: number }) => posts.filter((p) => p.authorId === u.id).slice(0, first ?? undefined),
    secret: () => {
      throw new GraphQLError('secret is classified', { extensions: { code: 'FORBIDDEN' } });
    },
    badge: () => {
      throw new GraphQLError('no badge issued', { extensions: { code: 'NOT_FOUND' } });
    },
  },
  Post: { author: (p: RemotePost) => users.find((u) => u.id === p.authorId) },
};

/** Every operation the remote received, in order. */
const received: { query: string; variables: Record<string, unknown> }[] = [];
const recorder: ApolloServerPlugin = {
  async requestDidStart({ request }) {
    received.push({ query: request.query ?? '', variables: request.variables ?? {} });
  },
};

async function startRemote(): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = new ApolloServer({
    typeDefs: REMOTE_SDL,
    resolvers: remoteResolvers,
    plugins: [recorder],
    includeStacktraceInErrorResponses: false,
  });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return { url, stop: () => server.stop() };
}

// ---- the hub ---------------------------------------------------------------------------------

const HUB_SDL = `
enum Role { ADMIN MEMBER }
input PostInput { title: String!, authorId: ID! }
type User {
  id: ID!
  name: String!
  role: Role!
  avatar(size: Int!): String!
  posts(first: Int): [Post!]!
  secret: String
  badge: String!
  "Not in the remote's User."
  nickname: String
}
type Post { id: ID!, title: String!, author: User! }
union SearchResult = User | Post

type Query {
  user(id: ID!): User @graphql(connector: "remote")
  member(id: ID!): User @graphql(connector: "remote", field: "user")
  people(role: Role, first: Int): [User!]! @graphql(connector: "remote", field: "users")
  search(text: String!): [SearchResult!]! @graphql(connector: "remote")
  cachedUser(id: ID!): User @graphql(connector: "remote", field: "user") @cache(ttlMs: 60000)
  boom: String @graphql(connector: "remote")
  strictBoom: String @graphql(connector: "strict", field: "boom")
  strictUser(id: ID!): User @graphql(connector: "strict", field: "user")
  slow: String @graphql(connector: "sleepy")
  gone(id: ID!): User @graphql(connector: "gone", field: "user")
  viaCode(id: ID!): String
  local: String
}
type Mutation {
  createPost(input: PostInput!): Post! @graphql(connector: "remote", operation: MUTATION)
}
`;

const HUB_RESOLVERS = `
export default {
  Query: {
    local: () => 'fine',
    viaCode: async (_, { id }, ctx) => {
      const { value } = await ctx.connectors.remote.execute('query($id:ID!){user(id:$id){name}}', { id }, { safe: true });
      return value.data.user.name;
    },
  },
};
`;

let remote: { url: string; stop: () => Promise<void> };
let goneUrl: string;
let h: TestHub;
beforeAll(async () => {
  remote = await startRemote();
  const gone = await startRemote();
  goneUrl = gone.url;
  await gone.stop();
  h = await startHub(
    { 'schema/remote.graphql': HUB_SDL, 'resolvers/local.mjs': HUB_RESOLVERS },
    {
      connectors: {
        remote: { type: 'graphql', url: remote.url, retry: { attempts: 0 } },
        sleepy: { type: 'graphql', url: remote.url, timeoutMs: 300, retry: { attempts: 0 } },
        gone: { type: 'graphql', url: goneUrl, retry: { attempts: 0 } },
        // Its breaker opens at the first counted failure of two calls.
        strict: { type: 'graphql', url: remote.url, retry: { attempts: 0 }, breaker: { volumeThreshold: 2, errorThresholdPercentage: 1 } },
      },
    },
  );
});
afterAll(async () => {
  await h?.stop();
  await remote?.stop();
});
beforeEach(() => {
  received.length = 0;
});

describe('@graphql delegation', () => {
  it('forwards the arguments as typed variables and the sub-selection as it is', async () => {
    const r = await gql(h.url, '{ user(id: "1") { name role posts(first: 1) { title } } }');
    expect(r.body).toEqual({ data: { user: { name: 'Ada', role: 'ADMIN', posts: [{ title: 'Engines' }] } } });
    expect(received).toEqual([{ query: 'query($id:ID!){user(id:$id){name role posts(first:1){title}}}', variables: { id: '1' } }]);
  });

  it('forwards the fragments and the client variables the sub-selection uses, and only those', async () => {
    const r = await gql(
      h.url,
      `query Q($who: ID!, $size: Int!, $other: ID!) {
        member(id: $who) { ...Card }
        viaCode(id: $other)
      }
      fragment Card on User { name avatar(size: $size) posts { ...PostBits } }
      fragment PostBits on Post { title }`,
      { who: '2', size: 32, other: '3' },
    );
    expect(r.body).toEqual({
      data: { member: { name: 'Bob', avatar: 'https://img.example/2?s=32', posts: [{ title: 'Bridges' }] }, viaCode: 'Cy' },
    });
    // The two fields resolve concurrently: the order the remote sees them in is not fixed.
    expect([...received].sort((a, b) => a.query.localeCompare(b.query))).toEqual([
      // The code resolver's own call.
      { query: 'query($id:ID!){user(id:$id){name}}', variables: { id: '3' } },
      {
        query:
          'query($size:Int!$id:ID!){user(id:$id){...Card}}fragment Card on User{name avatar(size:$size)posts{...PostBits}}fragment PostBits on Post{title}',
        variables: { size: 32, id: '2' },
      },
    ]);
  });

  it('renames an argument variable that a client variable of the same name already uses', async () => {
    const r = await gql(h.url, 'query($id: Int!) { user(id: "2") { avatar(size: $id) } }', { id: 48 });
    expect(r.body).toEqual({ data: { user: { avatar: 'https://img.example/2?s=48' } } });
    expect(received).toEqual([{ query: 'query($id:Int!$id_2:ID!){user(id:$id_2){avatar(size:$id)}}', variables: { id: 48, id_2: '2' } }]);
  });

  it('merges the sub-selections of every node of the field and inline fragments', async () => {
    const r = await gql(h.url, '{ user(id: "1") { name } user(id: "1") { ... on User { role } } }');
    expect(r.body).toEqual({ data: { user: { name: 'Ada', role: 'ADMIN' } } });
    expect(received).toEqual([{ query: 'query($id:ID!){user(id:$id){name ...on User{role}}}', variables: { id: '1' } }]);
  });

  it('answers under the client aliases, nested, in lists, and one field under several aliases', async () => {
    const r = await gql(
      h.url,
      `{ boss: user(id: "1") {
          who: name
          small: avatar(size: 16)
          big: avatar(size: 64)
          avatar(size: 8)
          writing: posts { heading: title by: author { name } }
          first: posts(first: 1) { title }
      } }`,
    );
    expect(r.body).toEqual({
      data: {
        boss: {
          who: 'Ada',
          small: 'https://img.example/1?s=16',
          big: 'https://img.example/1?s=64',
          avatar: 'https://img.example/1?s=8',
          writing: [
            { heading: 'Engines', by: { name: 'Ada' } },
            { heading: 'Notes', by: { name: 'Ada' } },
          ],
          first: [{ title: 'Engines' }],
        },
      },
    });
    expect(received).toEqual([
      {
        query:
          'query($id:ID!){user(id:$id){who:name small:avatar(size:16)big:avatar(size:64)avatar(size:8)writing:posts{heading:title by:author{name}}first:posts(first:1){title}}}',
        variables: { id: '1' },
      },
    ]);
  });

  it('delegates a list of objects, sending an enum argument by name and leaving out an absent one', async () => {
    const r = await gql(h.url, '{ people(role: MEMBER) { id name posts { title } } }');
    expect(r.body).toEqual({
      data: {
        people: [
          { id: '2', name: 'Bob', posts: [{ title: 'Bridges' }] },
          { id: '3', name: 'Cy', posts: [] },
        ],
      },
    });
    expect(received).toEqual([{ query: 'query($role:Role){users(role:$role){id name posts{title}}}', variables: { role: 'MEMBER' } }]);
  });

  it('asks for __typename where the type is abstract, and resolves the concrete types from it', async () => {
    const r = await gql(h.url, '{ search(text: "e") { ... on User { name } ... on Post { title } } }');
    expect(r.body).toEqual({ data: { search: [{ title: 'Engines' }, { title: 'Notes' }, { title: 'Bridges' }] } });
    const s = await gql(h.url, '{ search(text: "y") { __typename ... on User { name } } }');
    expect(s.body).toEqual({ data: { search: [{ __typename: 'User', name: 'Cy' }] } });
    expect(received).toEqual([
      { query: 'query($text:String!){search(text:$text){__typename ...on User{name}...on Post{title}}}', variables: { text: 'e' } },
      { query: 'query($text:String!){search(text:$text){__typename ...on User{name}}}', variables: { text: 'y' } },
    ]);
  });

  it('runs a mutation as a remote mutation, each one made, never deduplicated', async () => {
    const r = await gql(
      h.url,
      `mutation($input: PostInput!) {
        a: createPost(input: $input) { id title author { name } }
        b: createPost(input: $input) { id }
      }`,
      { input: { title: 'Gears', authorId: '2' } },
    );
    expect(r.body).toEqual({ data: { a: { id: 'p4', title: 'Gears', author: { name: 'Bob' } }, b: { id: 'p5' } } });
    expect(received).toEqual([
      { query: 'mutation($input:PostInput!){createPost(input:$input){id title author{name}}}', variables: { input: { title: 'Gears', authorId: '2' } } },
      { query: 'mutation($input:PostInput!){createPost(input:$input){id}}', variables: { input: { title: 'Gears', authorId: '2' } } },
    ]);
    posts.splice(3);
  });

  it('makes identical delegations of one request once, whatever the local field or alias', async () => {
    const r = await gql(h.url, '{ a: user(id: "3") { name } b: user(id: "3") { name } c: member(id: "3") { name } d: user(id: "2") { name } }');
    expect(r.body).toEqual({ data: { a: { name: 'Cy' }, b: { name: 'Cy' }, c: { name: 'Cy' }, d: { name: 'Bob' } } });
    expect(received).toEqual([
      { query: 'query($id:ID!){user(id:$id){name}}', variables: { id: '3' } },
      { query: 'query($id:ID!){user(id:$id){name}}', variables: { id: '2' } },
    ]);
  });

  it('serves a delegated field with @cache from the cache on the next request', async () => {
    const first = await gql(h.url, '{ cachedUser(id: "2") { name role } }');
    const second = await gql(h.url, '{ cachedUser(id: "2") { name role } }');
    expect(first.body).toEqual({ data: { cachedUser: { name: 'Bob', role: 'MEMBER' } } });
    expect(second.body).toEqual(first.body);
    expect(received).toHaveLength(1);
    // Without @cache, every request asks the remote.
    await gql(h.url, '{ user(id: "2") { name role } }');
    await gql(h.url, '{ user(id: "2") { name role } }');
    expect(received).toHaveLength(3);
  });

  it('lets a code resolver use the same connector object', async () => {
    const r = await gql(h.url, '{ viaCode(id: "1") }');
    expect(r.body).toEqual({ data: { viaCode: 'Ada' } });
    expect(received).toEqual([{ query: 'query($id:ID!){user(id:$id){name}}', variables: { id: '1' } }]);
  });
});

describe('@graphql errors', () => {
  it('turns a remote error into UPSTREAM_ERROR with the remote message and path; siblings resolve', async () => {
    const r = await gql(h.url, '{ boom user(id: "1") { name } local }');
    expect(r.body).toEqual({
      data: { boom: null, user: { name: 'Ada' }, local: 'fine' },
      errors: [
        {
          message: 'remote exploded',
          locations: [{ line: 1, column: 3 }],
          path: ['boom'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'remote', remotePath: ['boom'], remoteCode: 'INTERNAL_SERVER_ERROR' },
        },
      ],
    });
  });

  it('a well-formed error answer is the remote answering, not failing: no failure, no lastError, the breaker closed', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await gql(h.url, '{ strictBoom local }');
      expect(r.body).toEqual({
        data: { strictBoom: null, local: 'fine' },
        errors: [
          {
            message: 'remote exploded',
            locations: [{ line: 1, column: 3 }],
            path: ['strictBoom'],
            extensions: { code: 'UPSTREAM_ERROR', connector: 'strict', remotePath: ['boom'], remoteCode: 'INTERNAL_SERVER_ERROR' },
          },
        ],
      });
    }
    // A document the remote refuses (400 with errors) is not its failure either.
    const refused = await gql(h.url, '{ strictUser(id: "1") { nickname } }');
    expect(refused.body.errors).toMatchObject([{ path: ['strictUser'], extensions: { code: 'UPSTREAM_ERROR', connector: 'strict', status: 400 } }]);
    expect(received).toHaveLength(5);

    const status = await gql(h.url, '{ hub { connector(name: "strict") { requests failures lastError breaker { state } } } }');
    expect(status.body).toEqual({ data: { hub: { connector: { requests: 5, failures: 0, lastError: null, breaker: { state: 'CLOSED' } } } } });
    const metrics = await (await fetch(`${h.origin}/metrics`)).text();
    expect(metrics).toContain('junction_connector_requests_total{connector="strict",outcome="refused"} 5\n');
    expect(metrics).not.toContain('junction_connector_requests_total{connector="strict",outcome="error"}');
    // The same remote, asked something it answers: still served.
    expect((await gql(h.url, '{ strictUser(id: "2") { name } }')).body).toEqual({ data: { strictUser: { name: 'Bob' } } });
  });

  it('keeps the partial data of the remote and fails only the nested field that failed there', async () => {
    const r = await gql(h.url, '{ u: user(id: "1") { name hidden: secret } }');
    expect(r.body).toEqual({
      data: { u: { name: 'Ada', hidden: null } },
      errors: [
        {
          message: 'secret is classified',
          locations: [{ line: 1, column: 27 }],
          path: ['u', 'hidden'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'remote', remotePath: ['user', 'hidden'], remoteCode: 'FORBIDDEN' },
        },
      ],
    });
  });

  it('fails the delegated field itself when the remote error nulled the whole answer (a non-null field failed)', async () => {
    const r = await gql(h.url, '{ user(id: "2") { name badge } local }');
    expect(r.body).toEqual({
      data: { user: null, local: 'fine' },
      errors: [
        {
          message: 'no badge issued',
          locations: [{ line: 1, column: 3 }],
          path: ['user'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'remote', remotePath: ['user', 'badge'], remoteCode: 'NOT_FOUND' },
        },
      ],
    });
  });

  it('places nested errors inside a list at their item', async () => {
    const r = await gql(h.url, '{ people(first: 2) { name secret } }');
    expect(r.body.data).toEqual({ people: [{ name: 'Ada', secret: null }, { name: 'Bob', secret: null }] });
    expect(r.body.errors?.map((e) => [e.path, e.extensions?.remotePath, e.message])).toEqual([
      [['people', 0, 'secret'], ['users', 0, 'secret'], 'secret is classified'],
      [['people', 1, 'secret'], ['users', 1, 'secret'], 'secret is classified'],
    ]);
  });

  it('answers UPSTREAM_ERROR when the remote is down; siblings resolve', async () => {
    const r = await gql(h.url, '{ gone(id: "1") { name } local }');
    const port = new URL(goneUrl).port;
    expect(r.body).toEqual({
      data: { gone: null, local: 'fine' },
      errors: [
        {
          message: `POST http://127.0.0.1:${port}/ failed: ECONNREFUSED`,
          locations: [{ line: 1, column: 3 }],
          path: ['gone'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'gone' },
        },
      ],
    });
  });

  it('answers UPSTREAM_TIMEOUT when the remote does not answer within timeoutMs', async () => {
    const r = await gql(h.url, '{ slow local }');
    expect(r.body).toEqual({
      data: { slow: null, local: 'fine' },
      errors: [
        {
          message: 'sleepy did not answer within 300 ms',
          locations: [{ line: 1, column: 3 }],
          path: ['slow'],
          extensions: { code: 'UPSTREAM_TIMEOUT', connector: 'sleepy', timeoutMs: 300 },
        },
      ],
    });
  });

  it('answers UPSTREAM_ERROR with the status and the remote message when the remote refuses the document', async () => {
    // `nickname` exists in the hub's User only: the remote's validation refuses it (400).
    const r = await gql(h.url, '{ user(id: "1") { nickname } local }');
    expect(r.body).toEqual({
      data: { user: null, local: 'fine' },
      errors: [
        {
          message: `POST ${remote.url} answered 400: Cannot query field "nickname" on type "User". Did you mean "name"?`,
          locations: [{ line: 1, column: 3 }],
          path: ['user'],
          extensions: { code: 'UPSTREAM_ERROR', connector: 'remote', status: 400 },
        },
      ],
    });
  });

  it('reports the health check of each connector through testConnector', async () => {
    const r = await gql(h.url, 'mutation { ok: testConnector(name: "remote") { ok error } down: testConnector(name: "gone") { ok error } }');
    const port = new URL(goneUrl).port;
    expect(r.body).toEqual({
      data: {
        ok: { ok: true, error: null },
        down: { ok: false, error: `POST http://127.0.0.1:${port}/ failed: ECONNREFUSED` },
      },
    });
    expect(received).toEqual([{ query: '{ __typename }', variables: {} }]);
  });
});

describe('@graphql binding checks', () => {
  async function problems(sdl: string): Promise<string[]> {
    const { dir, remove } = project({ 'schema/a.graphql': sdl });
    try {
      await buildSchema({
        schema: [`${dir}/schema/**/*.graphql`],
        resolvers: [],
        baseDir: dir,
        authEnabled: false,
        registry: builtinRegistry,
        connectors: { remote: 'graphql', api: 'http' },
      });
      return [];
    } catch (error) {
      if (!(error instanceof SchemaError)) throw error;
      return error.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);
    } finally {
      remove();
    }
  }

  it('names an unknown connector, a connector of another type, a bad field name, a mutation on a read and @cache on a mutation', async () => {
    expect(
      await problems(`type Query {
  a: String @graphql(connector: "crm")
  b: String @graphql(connector: "api")
  c: String @graphql(connector: "remote", field: "not-a-name")
  d: String @graphql(connector: "remote", operation: MUTATION)
  e(id: ID): String @graphql(connector: "remote", field: "user")
}
type Mutation {
  f: String @graphql(connector: "remote", operation: MUTATION) @cache(ttlMs: 1000)
}`),
    ).toEqual([
      'schema/a.graphql:2:3: Query.a @graphql: no connector named "crm" is configured (configured: remote, api)',
      'schema/a.graphql:3:3: Query.b @graphql: connector "api" is of type http, not graphql',
      'schema/a.graphql:4:3: Query.c @graphql: field "not-a-name" is not a GraphQL field name',
      'schema/a.graphql:5:3: Query.d @graphql: operation MUTATION on a Query field would change the remote API on a read; bind it to a Mutation field',
      'schema/a.graphql:9:3: Mutation.f @graphql: @cache has no effect with operation MUTATION: a mutation is never cached',
    ]);
  });
});

describe('graphql connector config', () => {
  it('names each bad key and fills the defaults', async () => {
    const where = { file: 'junction.config.yaml', baseDir: '/tmp' };
    let error: unknown;
    try {
      await parseConfig({ connectors: { r: { type: 'graphql', url: 'ftp://example.com/graphql', maxResponseBytes: 0, endpoint: '/x' } } }, where);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'connectors.r.url: expected an http:// or https:// URL, got "ftp://example.com/graphql"',
      'connectors.r.maxResponseBytes: expected a positive integer, got 0',
      'connectors.r.endpoint: unknown key',
    ]);
    const parsed = await parseConfig({ connectors: { r: { type: 'graphql', url: 'https://api.example.com/graphql' } } }, where);
    expect(parsed.connectors.r).toMatchObject({
      type: 'graphql',
      url: 'https://api.example.com/graphql',
      maxResponseBytes: 5 * 1024 * 1024,
      connections: 64,
      timeoutMs: 10_000,
    });
  });
});
