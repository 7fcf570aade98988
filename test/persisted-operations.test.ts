// Trusted documents (`server.persistedOperations`): clients send Apollo's
// `extensions.persistedQuery.sha256Hash` over HTTP GET/POST and WebSocket; in `required` mode
// nothing else runs, and Apollo's automatic persisted queries cannot register new documents.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError } from '../src/config.ts';
import { gql, type GraphQLResponse, startHub, type TestHub } from './helpers.ts';

const sdl = `
type Query { name: String! greet(who: String!): String! secret: String! }
type Mutation { rename(to: String!): String! }
`;
const resolvers = `
let name = 'hub';
export default {
  Query: { name: () => name, greet: (_, { who }) => 'hello ' + who, secret: () => 'not for you' },
  Mutation: { rename: (_, { to }) => (name = to) },
};
`;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const GET_NAME = 'query GetName { name }';
const GREET = 'query Greet($who: String!) { greet(who: $who) }';
const RENAME = 'mutation Rename($to: String!) { rename(to: $to) }';
const NOT_LISTED = '{ secret }';

/** What `generate-persisted-query-manifest` (Apollo) writes. */
const apolloManifest = JSON.stringify({
  format: 'apollo-persisted-query-manifest',
  version: 1,
  operations: [
    { id: sha256(GET_NAME), name: 'GetName', type: 'query', body: GET_NAME },
    { id: sha256(GREET), name: 'Greet', type: 'query', body: GREET },
    { id: sha256(RENAME), name: 'Rename', type: 'mutation', body: RENAME },
  ],
});
/** What GraphQL Code Generator's client preset writes (`persistedDocuments: true`). */
const codegenManifest = JSON.stringify({ [sha256(GET_NAME)]: GET_NAME, [sha256(GREET)]: GREET });

const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

async function post(h: TestHub, body: Record<string, unknown>): Promise<GraphQLResponse> {
  const res = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as GraphQLResponse['body'] };
}

async function get(h: TestHub, params: Record<string, unknown>): Promise<GraphQLResponse> {
  const search = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  const res = await fetch(`${h.url}?${search}`, { headers: { 'apollo-require-preflight': 'true' } });
  return { status: res.status, headers: res.headers, body: (await res.json()) as GraphQLResponse['body'] };
}

/** One operation over a raw graphql-ws socket; graphql-ws requires a string query, so ids go with "". */
async function overWs(h: TestHub, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ws = new WebSocket(h.wsUrl, 'graphql-transport-ws');
  const answer = new Promise<Record<string, unknown>>((resolve) => {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Record<string, unknown>;
      if (m.type === 'connection_ack') ws.send(JSON.stringify({ type: 'subscribe', id: '1', payload }));
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

const NOT_FOUND = { errors: [{ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }] };
const FORBIDDEN = {
  errors: [{ message: 'Only trusted operations run here: send extensions.persistedQuery.sha256Hash of an operation in the manifest', extensions: { code: 'FORBIDDEN' } }],
};

const files = { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers };
let required: TestHub;
let optional: TestHub;
beforeAll(async () => {
  [required, optional] = await Promise.all([
    startHub({ ...files, 'ops/manifest.json': apolloManifest }, { server: { persistedOperations: { manifest: 'ops/manifest.json', mode: 'required' } } }),
    startHub({ ...files, 'persisted-documents.json': codegenManifest }, { server: { persistedOperations: { manifest: 'persisted-documents.json', mode: 'optional' } } }),
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([required?.stop(), optional?.stop()]);
});

describe('mode: required', () => {
  it('runs a listed operation sent by id over POST, with variables and operationName', async () => {
    const r = await post(required, { extensions: persisted(sha256(GREET)), variables: { who: 'ada' }, operationName: 'Greet' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ data: { greet: 'hello ada' } });
  });

  it('runs a listed query sent by id over GET', async () => {
    const r = await get(required, { extensions: persisted(sha256(GREET)), variables: { who: 'bob' } });
    expect(r.body).toEqual({ data: { greet: 'hello bob' } });
  });

  it('runs a listed mutation over POST, and never over GET', async () => {
    expect((await post(required, { extensions: persisted(sha256(RENAME)), variables: { to: 'hub' } })).body).toEqual({ data: { rename: 'hub' } });
    const r = await get(required, { extensions: persisted(sha256(RENAME)), variables: { to: 'evil' } });
    expect(r.status).toBe(405);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect((await post(required, { extensions: persisted(sha256(GET_NAME)) })).body).toEqual({ data: { name: 'hub' } });
  });

  it('answers an unknown id with PERSISTED_QUERY_NOT_FOUND (status 200, as Apollo)', async () => {
    const r = await post(required, { extensions: persisted(sha256('{ secret }')) });
    expect(r.status).toBe(200);
    expect(r.body).toEqual(NOT_FOUND);
    const overGet = await get(required, { extensions: persisted('0'.repeat(64)) });
    expect(overGet.body).toEqual(NOT_FOUND);
  });

  it('refuses a document that is not listed with 403 FORBIDDEN', async () => {
    const r = await gql(required.url, NOT_LISTED);
    expect(r.status).toBe(403);
    expect(r.body).toEqual(FORBIDDEN);
    const overGet = await get(required, { query: NOT_LISTED });
    expect(overGet.status).toBe(403);
    expect(overGet.body).toEqual(FORBIDDEN);
  });

  it('runs a listed document sent whole', async () => {
    expect((await gql(required.url, GET_NAME)).body).toEqual({ data: { name: 'hub' } });
  });

  it('lets no client register a document the automatic-persisted-queries way', async () => {
    const register = await post(required, { query: NOT_LISTED, extensions: persisted(sha256(NOT_LISTED)) });
    expect(register.status).toBe(403);
    expect(register.body).toEqual(FORBIDDEN);
    expect((await post(required, { extensions: persisted(sha256(NOT_LISTED)) })).body).toEqual(NOT_FOUND);
  });

  it('resolves ids over WebSocket too, and refuses the rest the same way', async () => {
    expect(await overWs(required, { query: '', extensions: persisted(sha256(GREET)), variables: { who: 'ws' } })).toEqual({
      id: '1',
      type: 'next',
      payload: { data: { greet: 'hello ws' } },
    });
    expect(await overWs(required, { query: '', extensions: persisted('f'.repeat(64)) })).toEqual({ id: '1', type: 'error', payload: NOT_FOUND.errors });
    expect(await overWs(required, { query: NOT_LISTED })).toEqual({ id: '1', type: 'error', payload: FORBIDDEN.errors });
  });
});

describe('mode: optional, with a GraphQL Code Generator manifest', () => {
  it('runs listed operations by id', async () => {
    expect((await post(optional, { extensions: persisted(sha256(GET_NAME)) })).body).toEqual({ data: { name: 'hub' } });
    expect((await get(optional, { extensions: persisted(sha256(GREET)), variables: { who: 'cy' } })).body).toEqual({ data: { greet: 'hello cy' } });
  });

  it('runs any other document too', async () => {
    expect((await gql(optional.url, NOT_LISTED)).body).toEqual({ data: { secret: 'not for you' } });
    const ws = await overWs(optional, { query: NOT_LISTED });
    expect(ws).toEqual({ id: '1', type: 'next', payload: { data: { secret: 'not for you' } } });
  });

  it('answers an unknown id alone with PERSISTED_QUERY_NOT_FOUND, and registers nothing', async () => {
    expect((await post(optional, { extensions: persisted(sha256(NOT_LISTED)) })).body).toEqual(NOT_FOUND);
    // The id with its document runs (the client's retry), but is not remembered.
    expect((await post(optional, { query: NOT_LISTED, extensions: persisted(sha256(NOT_LISTED)) })).body).toEqual({ data: { secret: 'not for you' } });
    expect((await post(optional, { extensions: persisted(sha256(NOT_LISTED)) })).body).toEqual(NOT_FOUND);
  });
});

describe('a manifest that cannot be used', () => {
  it('is a config error naming the key and the problem', async () => {
    const missing = startHub(files, { server: { persistedOperations: { manifest: 'nope.json' } } });
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toMatchObject({
      problems: [{ file: 'junction.config.yaml', path: 'server.persistedOperations.manifest', message: expect.stringMatching(/^manifest .*nope\.json not found$/) }],
    });
    const malformed = startHub({ ...files, 'm.json': '{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":1}]}' }, {
      server: { persistedOperations: { manifest: 'm.json' } },
    });
    await expect(malformed).rejects.toMatchObject({
      problems: [{ path: 'server.persistedOperations.manifest', message: expect.stringMatching(/operations\[0\] needs a string "id" and "body"$/) }],
    });
  });
});
