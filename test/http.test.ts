import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startHub, type TestHub } from './helpers.ts';

const sdl = `
type Query {
  ok: String!
  greet(name: String!): String!
  failing: String
  crashing: String
  items(first: Int): [Item!]!
}
type Mutation { rename(to: String!): String! }
type Item { id: ID! name: String! }
`;

const resolvers = `
import { GraphQLError } from 'graphql';
export default {
  Query: {
    ok: () => 'fine',
    greet: (_, { name }) => 'Hi ' + name,
    failing: () => { throw new GraphQLError('name is taken', { extensions: { code: 'BAD_USER_INPUT' } }); },
    crashing: () => { throw new TypeError('cannot read properties of undefined (reading "rows")'); },
    items: (_, { first }) => Array.from({ length: first ?? 3 }, (_, i) => ({ id: String(i + 1), name: 'item ' + (i + 1) })),
  },
  Mutation: { rename: (_, { to }) => to },
};
`;

let h: TestHub;
beforeAll(async () => {
  h = await startHub(
    { 'schema/test.graphql': sdl, 'resolvers/test.mjs': resolvers },
    { server: { cors: { origins: ['http://app.example'] }, limits: { bodyBytes: 2048 } } },
  );
});
afterAll(() => h.stop());

describe('GraphQL over HTTP', () => {
  it('answers a POSTed query with variables', async () => {
    const r = await gql(h.url, 'query G($n: String!) { greet(name: $n) ok }', { n: 'Ada' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ data: { greet: 'Hi Ada', ok: 'fine' } });
  });

  it('answers a query sent with GET, without any CSRF header', async () => {
    const res = await fetch(`${h.url}?query=${encodeURIComponent('{ greet(name: "Bob") }')}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { greet: 'Hi Bob' } });
  });

  it('refuses a mutation sent with GET', async () => {
    const res = await fetch(`${h.url}?query=${encodeURIComponent('mutation { rename(to: "x") }')}`);
    expect(res.status).toBe(405);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]!.extensions.code).toBe('BAD_REQUEST');
  });

  it('runs a mutation sent with POST', async () => {
    const r = await gql(h.url, 'mutation { rename(to: "new") }');
    expect(r.body).toEqual({ data: { rename: 'new' } });
  });

  it('keeps sibling fields when one field fails, with the error code and path', async () => {
    const r = await gql(h.url, '{ ok failing }');
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ ok: 'fine', failing: null });
    expect(r.body.errors).toEqual([
      { message: 'name is taken', locations: [{ line: 1, column: 6 }], path: ['failing'], extensions: { code: 'BAD_USER_INPUT' } },
    ]);
  });

  it('masks an internal error in the response and logs it in full', async () => {
    const r = await gql(h.url, '{ ok crashing }');
    expect(r.body.data).toEqual({ ok: 'fine', crashing: null });
    expect(r.body.errors).toEqual([
      { message: 'Internal server error', locations: [{ line: 1, column: 6 }], path: ['crashing'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
    ]);
    expect(JSON.stringify(r.body)).not.toContain('rows');
    const logged = h.logs.find((l) => l.msg === 'internal error (masked in the response)');
    expect(logged).toBeDefined();
    expect(JSON.stringify(logged)).toContain('cannot read properties of undefined (reading \\"rows\\")');
  });

  it('answers a syntax error with GRAPHQL_PARSE_FAILED and 400', async () => {
    const r = await gql(h.url, '{ ok ');
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([
      { message: 'Syntax Error: Expected Name, found <EOF>.', locations: [{ line: 1, column: 6 }], extensions: { code: 'GRAPHQL_PARSE_FAILED' } },
    ]);
  });

  it('answers an unknown field with GRAPHQL_VALIDATION_FAILED and 400', async () => {
    const r = await gql(h.url, '{ nope }');
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([
      { message: 'Cannot query field "nope" on type "Query".', locations: [{ line: 1, column: 3 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } },
    ]);
  });

  it('answers a missing variable with BAD_USER_INPUT', async () => {
    const r = await gql(h.url, 'query G($n: String!) { greet(name: $n) }', {});
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(r.body.errors?.[0]?.message).toBe('Variable "$n" of required type "String!" was not provided.');
  });

  it('answers a body that is not JSON with BAD_REQUEST and 400', async () => {
    const res = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ errors: [{ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
  });

  it('answers a body over server.limits.bodyBytes with 413, declared or streamed', async () => {
    const big = JSON.stringify({ query: `{ ok } # ${'x'.repeat(4096)}` });
    const res = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      errors: [{ message: 'Request body is over the limit of 2048 bytes', extensions: { code: 'BAD_REQUEST' } }],
    });

    // Chunked, with no Content-Length: the limit is counted as the body arrives.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(h.url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res2) => {
        res2.resume();
        resolve(res2.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write(big.slice(i * 600, (i + 1) * 600));
      req.end();
    });
    expect(status).toBe(413);
    // The hub still serves afterwards.
    expect((await gql(h.url, '{ ok }')).body).toEqual({ data: { ok: 'fine' } });
  });
});

describe('other endpoints', () => {
  it('GET /healthz answers 200', async () => {
    const res = await fetch(`${h.origin}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 with each connector (none here)', async () => {
    const res = await fetch(`${h.origin}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', connectors: [] });
  });

  it('GET /metrics counts GraphQL operations by type and name, with a duration histogram', async () => {
    await gql(h.url, 'query Named { ok }');
    await gql(h.url, 'mutation Renaming { rename(to: "y") }');
    await gql(h.url, 'query Broken { failing }');
    const res = await fetch(`${h.origin}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('junction_graphql_operations_total{type="query",name="Named",outcome="success"} 1');
    expect(text).toContain('junction_graphql_operations_total{type="mutation",name="Renaming",outcome="success"} 1');
    expect(text).toContain('junction_graphql_operations_total{type="query",name="Broken",outcome="error"} 1');
    expect(text).toMatch(/junction_graphql_operation_duration_seconds_count\{type="query",name="Named"\} 1/);
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('answers unknown paths with 404', async () => {
    const res = await fetch(`${h.origin}/nope`);
    expect(res.status).toBe(404);
  });

  it('sends CORS headers to allowed origins only, and answers preflights', async () => {
    const allowed = await fetch(h.url, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://app.example');
    expect(allowed.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');

    const other = await fetch(`${h.url}?query={ok}`, { headers: { origin: 'http://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
