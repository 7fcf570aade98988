// NODE_ENV=production: introspection, field suggestions and GraphiQL are off unless the config
// turns them on; internal errors stay masked; `junction check` warns about open management.
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, project, runCli, startHub, type TestHub } from './helpers.ts';

const sdl = `
enum Color { RED GREEN }
type Query { name: String! paint(color: Color!): String! broken: String }
`;
const resolvers = `
export default {
  Query: {
    name: () => 'hub',
    paint: (_, { color }) => color,
    broken: () => { throw new Error('database password is hunter2'); },
  },
};
`;
const files = { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers };

let prod: TestHub;
let prodOptedIn: TestHub;
let dev: TestHub;
beforeAll(async () => {
  [prod, prodOptedIn, dev] = await Promise.all([
    startHub(files, {}, { NODE_ENV: 'production' }),
    startHub(files, { server: { introspection: true, graphiql: true, suggestions: true } }, { NODE_ENV: 'production' }),
    startHub(files, {}, {}),
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([prod?.stop(), prodOptedIn?.stop(), dev?.stop()]);
});

const graphiql = (h: TestHub) => fetch(h.url, { headers: { accept: 'text/html' } });

/** One operation over a raw graphql-ws socket: the first `next` or `error` message. */
async function overWs(h: TestHub, query: string): Promise<unknown> {
  const ws = new WebSocket(h.wsUrl, 'graphql-transport-ws');
  const answer = new Promise<unknown>((resolve) => {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string };
      if (m.type === 'connection_ack') ws.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query } }));
      if (m.type === 'next' || m.type === 'error') resolve(m);
    });
  });
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ type: 'connection_init' }));
  try {
    return await answer;
  } finally {
    ws.close();
  }
}

describe('NODE_ENV=production, nothing turned on', () => {
  it('refuses introspection over HTTP and WebSocket', async () => {
    const r = await gql(prod.url, getIntrospectionQuery());
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(r.body.errors?.[0]?.message).toMatch(/introspection is not allowed/);
    const ws = (await overWs(prod, '{ __schema { queryType { name } } }')) as { type: string; payload: { message: string; extensions: unknown }[] };
    expect(ws.type).toBe('error');
    expect(ws.payload.map((e) => [e.message, e.extensions])).toEqual([
      ['GraphQL introspection has been disabled, but the requested query contained the field "__schema".', { code: 'GRAPHQL_VALIDATION_FAILED' }],
      ['GraphQL introspection has been disabled, but the requested query contained the field "queryType".', { code: 'GRAPHQL_VALIDATION_FAILED' }],
    ]);
  });

  it('leaves __typename alone: it is not introspection of the schema', async () => {
    expect((await gql(prod.url, '{ __typename name }')).body).toEqual({ data: { __typename: 'Query', name: 'hub' } });
  });

  it('answers a mistyped field without "Did you mean", over HTTP and WebSocket', async () => {
    const r = await gql(prod.url, '{ nme }');
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ message: 'Cannot query field "nme" on type "Query".', locations: [{ line: 1, column: 3 }], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]);
    const ws = (await overWs(prod, '{ nme }')) as { payload: { message: string }[] };
    expect(ws.payload.map((e) => e.message)).toEqual(['Cannot query field "nme" on type "Query".']);
  });

  it('answers a mistyped enum value in a variable without naming the real ones', async () => {
    const r = await gql(prod.url, 'query($c: Color!) { paint(color: $c) }', { c: 'REDD' });
    expect(r.body.errors?.map((e) => e.message)).toEqual(['Variable "$c" got invalid value "REDD"; Value "REDD" does not exist in "Color" enum.']);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('serves no GraphiQL', async () => {
    const res = await graphiql(prod);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'GraphiQL is disabled (server.graphiql)' });
  });

  it('masks internal errors', async () => {
    const r = await gql(prod.url, '{ broken }');
    expect(r.body).toEqual({
      data: { broken: null },
      errors: [{ message: 'Internal server error', locations: [{ line: 1, column: 3 }], path: ['broken'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
    });
  });
});

describe('NODE_ENV=production, the config turns them on', () => {
  it('answers introspection, suggests, and serves GraphiQL', async () => {
    const r = await gql(prodOptedIn.url, '{ __schema { queryType { name } } }');
    expect(r.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
    const typo = await gql(prodOptedIn.url, '{ nme }');
    expect(typo.body.errors?.[0]?.message).toBe('Cannot query field "nme" on type "Query". Did you mean "name"?');
    expect((await graphiql(prodOptedIn)).status).toBe(200);
  });
});

describe('outside production', () => {
  it('keeps introspection, suggestions and GraphiQL on by default', async () => {
    expect((await gql(dev.url, '{ __schema { queryType { name } } }')).body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
    expect((await gql(dev.url, '{ nme }')).body.errors?.[0]?.message).toBe('Cannot query field "nme" on type "Query". Did you mean "name"?');
    const ws = (await overWs(dev, '{ nme }')) as { payload: { message: string }[] };
    expect(ws.payload[0]?.message).toBe('Cannot query field "nme" on type "Query". Did you mean "name"?');
    expect((await graphiql(dev)).status).toBe(200);
  });
});

describe('junction check in production', () => {
  let dir: string;
  let remove: () => void;
  beforeAll(() => {
    ({ dir, remove } = project({ ...files, 'junction.config.yaml': 'server:\n  port: 4000\n' }));
  });
  afterAll(() => remove());

  it('warns that management is open when auth is missing, and still exits 0', async () => {
    const result = await runCli(['check'], { cwd: dir, env: { NODE_ENV: 'production' } });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      'warning: NODE_ENV=production and no auth is configured: the management API (hub, testConnector, resetBreaker, connectorStatus) is open to every caller; configure auth (jwt or apiKeys) and give operators the admin role\n',
    );
  }, 90_000);

  it('warns about development features the production config turns back on', async () => {
    const withAuth = project({
      ...files,
      'junction.config.yaml': 'server:\n  introspection: true\nauth:\n  apiKeys:\n    - key: ${OPS_KEY}\n      sub: ops\n      roles: [admin]\n',
    });
    try {
      const result = await runCli(['check'], { cwd: withAuth.dir, env: { NODE_ENV: 'production', OPS_KEY: 'ops-key-0123456789abcdef' } });
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('warning: NODE_ENV=production and server.introspection is on: it is off by default in production\n');
    } finally {
      withAuth.remove();
    }
  }, 90_000);

  it('says nothing outside production', async () => {
    const result = await runCli(['check'], { cwd: dir, env: {} });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  }, 90_000);
});
