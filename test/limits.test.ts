import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startHub, type TestHub } from './helpers.ts';

const sdl = `
type Query { user(id: ID!): User users(first: Int): [User!]! }
type User { id: ID! name: String! friends(first: Int): [User!]! }
`;
const resolvers = `
const user = (id) => ({ id, name: 'user ' + id });
export default {
  Query: { user: (_, { id }) => user(id), users: (_, { first }) => Array.from({ length: first ?? 2 }, (_, i) => user(String(i))) },
  User: { friends: (u, { first }) => Array.from({ length: Math.min(first ?? 2, 2) }, (_, i) => user(u.id + '.' + i)) },
};
`;

let h: TestHub;
let closed: TestHub;
beforeAll(async () => {
  h = await startHub(
    { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers },
    { server: { limits: { depth: 5, aliases: 3, cost: 200, listFactor: 10 } } },
  );
  closed = await startHub({ 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers }, { server: { introspection: false } });
});
afterAll(async () => {
  await h.stop();
  await closed.stop();
});

const tooComplex = async (query: string) => {
  const r = await gql(h.url, query);
  expect(r.status).toBe(400);
  expect(r.body.data).toBeUndefined();
  expect(r.body.errors).toHaveLength(1);
  expect(r.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  return r.body.errors![0]!;
};

describe('server.limits refuse expensive operations before they run', () => {
  it('accepts an operation within every limit', async () => {
    const r = await gql(h.url, '{ user(id: "1") { friends(first: 2) { name } } }');
    expect(r.body).toEqual({ data: { user: { friends: [{ name: 'user 1.0' }, { name: 'user 1.1' }] } } });
  });

  it('refuses depth over the limit, fragments included', async () => {
    const e = await tooComplex(`
      query { user(id: "1") { ...F } }
      fragment F on User { friends(first: 1) { friends(first: 1) { friends(first: 1) { friends(first: 1) { id } } } } }`);
    expect(e.message).toBe('Query too complex: depth 6 is over the limit of 5');
    expect(e.extensions).toMatchObject({ depth: 6 });
  });

  it('refuses more aliases than allowed', async () => {
    const e = await tooComplex('{ a: user(id: "1") { id } b: user(id: "2") { id } c: user(id: "3") { id } d: user(id: "4") { id } }');
    expect(e.message).toBe('Query too complex: 4 aliases are over the limit of 3');
  });

  it('multiplies list fields by their page size, or listFactor without one', async () => {
    // users(first: 20) { friends { id } }: 1 + 20 × (1 + 10 × 1) = 221 > 200.
    const e = await tooComplex('{ users(first: 20) { friends { id } } }');
    expect(e.message).toBe('Query too complex: cost 221 is over the limit of 200');
    // users(first: 5) { friends(first: 3) { id } }: 1 + 5 × (1 + 3 × 1) = 21.
    const ok = await gql(h.url, '{ users(first: 5) { friends(first: 3) { id } } }');
    expect(ok.body.errors).toBeUndefined();
  });

  it('names every limit an operation breaks', async () => {
    // Cost from the inside out: 1 + 10×1 = 11; 1 + 10×11 = 111; 1 + 10×111 = 1111;
    // 1 + 50×1111 = 55551; 1 + 50×55551 = 2777551.
    const e = await tooComplex(
      '{ a: users(first: 50) { b: friends(first: 50) { c: friends { d: friends { friends { id } } } } } }',
    );
    expect(e.message).toBe(
      'Query too complex: depth 6 is over the limit of 5; 4 aliases are over the limit of 3; cost 2777551 is over the limit of 200',
    );
  });

  it('does not count introspection, so GraphiQL can load the schema', async () => {
    const r = await gql(h.url, getIntrospectionQuery());
    expect(r.status).toBe(200);
    expect(r.body.errors).toBeUndefined();
  });

  it('survives a fragment cycle (reported by validation, not a stack overflow)', async () => {
    const r = await gql(h.url, '{ user(id: "1") { ...A } } fragment A on User { friends { ...A } }');
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.message).toBe('Cannot spread fragment "A" within itself.');
  });
});

describe('server.introspection: false', () => {
  it('refuses introspection and still answers queries', async () => {
    const r = await gql(closed.url, '{ __schema { types { name } } }');
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(r.body.errors?.[0]?.message).toContain('introspection');
    expect((await gql(closed.url, '{ user(id: "9") { name } }')).body).toEqual({ data: { user: { name: 'user 9' } } });
  });
});
