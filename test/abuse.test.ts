// The careless and the hostile client against a running hub: every answer is a 4xx or a GraphQL
// error with a code — never a 500, never a crash, never memory that keeps growing.
import { request } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, startHub, type TestHub } from './helpers.ts';

const sdl = `
type Query {
  ok: String!
  node(id: ID!): Node
  echo(text: String): String
  sum(values: [[Int!]!]): Int
}
type Node { id: ID! child: Node }
`;
const resolvers = `
export default {
  Query: {
    ok: () => 'fine',
    node: (_, { id }) => ({ id }),
    echo: (_, { text }) => text,
    sum: (_, { values }) => values.flat().reduce((a, b) => a + b, 0),
  },
  Node: { child: (n) => ({ id: n.id + '.1' }) },
};
`;

let h: TestHub;
beforeAll(async () => {
  h = await startHub({ 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers });
}, 60_000);
afterAll(() => h?.stop());

interface Answer {
  status: number;
  body: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

/** POSTs raw bytes, as a client that builds its own body would. */
async function post(body: string | Buffer, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(h.url, { method: 'POST', headers: { 'content-type': contentType }, body });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Answer['body'] };
}

/** The single error of an answer, as the client sees it. */
function only(a: Answer) {
  expect(a.body.errors).toHaveLength(1);
  return { status: a.status, message: a.body.errors![0]!.message, code: a.body.errors![0]!.extensions?.code };
}

const deep = (open: string, close: string, n: number, inner: string) => open.repeat(n) + inner + close.repeat(n);

describe('malformed requests', () => {
  it('answers malformed JSON with 400 BAD_REQUEST', async () => {
    expect(only(await post('{"query": "{ ok }"'))).toEqual({ status: 400, message: 'Request body is not valid JSON', code: 'BAD_REQUEST' });
  });

  it('answers a JSON body nested 100 000 deep with 400 BAD_REQUEST, without parsing it', async () => {
    const body = `{"query":"query($v: [[Int!]!]) { sum(values: $v) }","variables":{"v":${deep('[', ']', 100_000, '1')}}}`;
    expect(only(await post(body))).toEqual({ status: 400, message: 'Request body is nested deeper than the limit of 64', code: 'BAD_REQUEST' });
  });

  it('answers variables over the body limit with 413', async () => {
    const body = JSON.stringify({ query: 'query($t: String) { echo(text: $t) }', variables: { t: 'x'.repeat(2 * 1024 * 1024) } });
    expect(only(await post(body))).toEqual({ status: 413, message: 'Request body is over the limit of 1048576 bytes', code: 'BAD_REQUEST' });
  });

  it('answers invalid UTF-8 in the document with a parse error', async () => {
    const body = Buffer.concat([Buffer.from('{"query":"{ ok '), Buffer.from([0xff, 0xfe]), Buffer.from(' }"}')]);
    expect(only(await post(body))).toEqual({ status: 400, message: 'Syntax Error: Unexpected character: U+FFFD.', code: 'GRAPHQL_PARSE_FAILED' });
  });

  it('answers invalid UTF-8 in a variable with the text the client sent, replacement characters and all', async () => {
    const body = Buffer.concat([Buffer.from('{"query":"query($t: String) { echo(text: $t) }","variables":{"t":"a'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]);
    const a = await post(body);
    expect(a).toEqual({ status: 200, body: { data: { echo: 'a\uFFFD(' } } });
  });

  it('answers a batch (a JSON array) with 400', async () => {
    const a = await post(JSON.stringify([{ query: '{ ok }' }, { query: '{ ok }' }]));
    expect(a.status).toBe(400);
    expect(a.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
  });

  it('answers a query that is not a string with 400 BAD_REQUEST', async () => {
    expect(only(await post(JSON.stringify({ query: { ok: true } })))).toEqual({
      status: 400,
      message: 'GraphQL queries must be strings.',
      code: 'BAD_REQUEST',
    });
  });

  it('answers a GET with a query string over the header limit with 431', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(h.url);
      url.searchParams.set('query', `{ ${'ok '.repeat(20_000)} }`);
      request(url, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(431);
  });
});

describe('hostile documents', () => {
  it('refuses a document nested thousands deep (selection sets) with QUERY_TOO_COMPLEX', async () => {
    const r = await gql(h.url, deep('{ node(id: 1) ', '}', 5_000, '{ id }'));
    expect(only(r)).toEqual({ status: 400, message: 'Query too complex: nesting 65 is over the limit of 64', code: 'QUERY_TOO_COMPLEX' });
  });

  it('refuses a list argument nested thousands deep with QUERY_TOO_COMPLEX, over GET too', async () => {
    const query = `{ sum(values: ${deep('[', ']', 10_000, '1')}) }`;
    expect(only(await gql(h.url, query))).toEqual({ status: 400, message: 'Query too complex: nesting 65 is over the limit of 64', code: 'QUERY_TOO_COMPLEX' });
    const res = await fetch(`${h.url}?query=${encodeURIComponent(`{ sum(values: ${deep('[', ']', 1_000, '1')}) }`)}`);
    expect(only({ status: res.status, body: (await res.json()) as Answer['body'] })).toEqual({
      status: 400,
      message: 'Query too complex: nesting 65 is over the limit of 64',
      code: 'QUERY_TOO_COMPLEX',
    });
  });

  it('refuses a document of thousands of fragments (over the token limit) with GRAPHQL_PARSE_FAILED', async () => {
    const n = 3_000;
    const query = `{ ${Array.from({ length: n }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ok }`).join(' ')}`;
    expect(only(await gql(h.url, query))).toEqual({
      status: 400,
      message: 'Syntax Error: Document contains more that 15000 tokens. Parsing aborted.',
      code: 'GRAPHQL_PARSE_FAILED',
    });
  });

  it('answers a thousand overlapping fragments under the token limit with graphql-js\'s own work budget', async () => {
    const n = 1_400;
    const query = `{ ${Array.from({ length: n }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ok }`).join(' ')}`;
    expect(only(await gql(h.url, query))).toEqual({ status: 400, message: 'Validation aborted.', code: 'GRAPHQL_VALIDATION_FAILED' });
  });

  it('refuses fragments that spread each other exponentially (2^40 fields) with QUERY_TOO_COMPLEX', async () => {
    const n = 40;
    const fragments = Array.from({ length: n }, (_, i) => `fragment F${i} on Node { id ${i + 1 < n ? `child { ...F${i + 1} } child { ...F${i + 1} }` : ''} }`);
    const r = await gql(h.url, `{ node(id: 1) { ...F0 } } ${fragments.join(' ')}`);
    expect(r.status).toBe(400);
    expect(r.body.errors?.map((e) => e.extensions?.code)).toContain('QUERY_TOO_COMPLEX');
    expect(r.body.errors?.every((e) => e.extensions?.code === 'QUERY_TOO_COMPLEX' || e.extensions?.code === 'GRAPHQL_VALIDATION_FAILED')).toBe(true);
  });

  it('refuses a document with more directives than the limit with QUERY_TOO_COMPLEX', async () => {
    const fields = Array.from({ length: 60 }, (_, i) => `f${i}: ok @include(if: true)`).join(' ');
    const r = await gql(h.url, `{ ${fields} }`);
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]).toEqual({ message: 'Query too complex: 60 directives are over the limit of 50', extensions: { code: 'QUERY_TOO_COMPLEX', directives: 60 } });
  });

  it('refuses one field with thousands of repeated directives with QUERY_TOO_COMPLEX first', async () => {
    const r = await gql(h.url, `{ ok ${'@skip(if: false) '.repeat(2_000)} }`);
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]).toEqual({ message: 'Query too complex: 2000 directives are over the limit of 50', extensions: { code: 'QUERY_TOO_COMPLEX', directives: 2000 } });
    expect(r.body.errors?.every((e) => typeof e.extensions?.code === 'string')).toBe(true);
  });

  it('refuses a field duplication bomb with QUERY_TOO_COMPLEX first', async () => {
    const r = await gql(h.url, `{ ${'ok '.repeat(5_000)} }`);
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.message).toBe('Query too complex: "ok" is selected more than 10 times in one selection set');
    expect(r.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    expect(r.body.errors?.every((e) => typeof e.extensions?.code === 'string')).toBe(true);
  });

  it('refuses a __typename flood with QUERY_TOO_COMPLEX, aliased or not', async () => {
    const plain = await gql(h.url, `{ ${'__typename '.repeat(5_000)} }`);
    expect(plain.body.errors?.[0]?.message).toBe('Query too complex: "__typename" is selected more than 10 times in one selection set');
    const aliased = await gql(h.url, `{ ${Array.from({ length: 1_000 }, (_, i) => `t${i}: __typename`).join(' ')} }`);
    expect(aliased.status).toBe(400);
    expect(aliased.body.errors?.[0]?.message).toBe('Query too complex: 1000 aliases are over the limit of 30');
  });

  it('still runs a document within every limit, duplicates up to the limit included', async () => {
    const r = await gql(h.url, `{ ${'ok '.repeat(10)} node(id: 1) { id child { id } } }`);
    expect(r).toMatchObject({ status: 200, body: { data: { ok: 'fine', node: { id: '1', child: { id: '1.1' } } } } });
  });
});

describe('the same attacks over WebSocket', () => {
  /** Runs one operation on a fresh socket; the payload may be JSON text (too deep for JSON.stringify). */
  async function wsOperation(payload: Record<string, unknown> | string): Promise<Record<string, unknown>> {
    const frame = `{"type":"subscribe","id":"1","payload":${typeof payload === 'string' ? payload : JSON.stringify(payload)}}`;
    const ws = new WebSocket(h.wsUrl, 'graphql-transport-ws');
    const messages: Record<string, unknown>[] = [];
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        messages.push(m);
        if (m.type === 'connection_ack') ws.send(frame);
        if (m.type === 'error' || m.type === 'next') resolve(m);
      });
      ws.on('close', (code) => reject(new Error(`closed with ${code}`)));
    });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'connection_init' }));
    try {
      return await answer;
    } finally {
      ws.close();
    }
  }

  it('refuses a document nested thousands deep', async () => {
    expect(await wsOperation({ query: deep('{ node(id: 1) ', '}', 5_000, '{ id }') })).toEqual({
      id: '1',
      type: 'error',
      payload: [{ message: 'Query too complex: nesting 65 is over the limit of 64', extensions: { code: 'QUERY_TOO_COMPLEX' } }],
    });
  });

  it('refuses variables nested thousands deep', async () => {
    const payload = `{"query":"query($v: [[Int!]!]) { sum(values: $v) }","variables":{"v":${deep('[', ']', 100_000, '1')}}}`;
    expect(await wsOperation(payload)).toEqual({
      id: '1',
      type: 'error',
      payload: [{ message: 'Variables are nested deeper than the limit of 64', extensions: { code: 'BAD_REQUEST' } }],
    });
  });

  it('refuses a document over the token limit and a duplication bomb', async () => {
    const tokens = await wsOperation({ query: `{ ${'ok '.repeat(16_000)} }` });
    expect(tokens.payload).toEqual([
      {
        message: 'Syntax Error: Document contains more that 15000 tokens. Parsing aborted.',
        locations: [{ line: 1, column: 45_000 }],
        extensions: { code: 'GRAPHQL_PARSE_FAILED' },
      },
    ]);
    const bomb = (await wsOperation({ query: `{ ${'ok '.repeat(5_000)} }` })) as { payload: { message: string; extensions: { code: string } }[] };
    expect(bomb.payload[0]).toMatchObject({ message: 'Query too complex: "ok" is selected more than 10 times in one selection set', extensions: { code: 'QUERY_TOO_COMPLEX' } });
  });
});

describe('after all of it', () => {
  it('never answered 500, logged no failed request, and still serves', async () => {
    expect(h.logs.filter((l) => l.msg === 'request failed' || l.level === 50)).toEqual([]);
    expect((await gql(h.url, '{ ok }')).body).toEqual({ data: { ok: 'fine' } });
  });

  it('does not keep memory for a flood of distinct bad documents', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const flood = async (from: number) => {
      for (let i = from; i < from + 1_500; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, j) => gql(h.url, `{ ok${i + j} ${'x'.repeat(200)}${i + j}: ok @nope }`)),
        );
      }
    };
    await flood(0);
    gc();
    const before = process.memoryUsage().heapUsed;
    await flood(10_000);
    await flood(20_000);
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    expect(growth).toBeLessThan(16 * 1024 * 1024);
  }, 120_000);
});
