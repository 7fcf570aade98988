/**
 * The management API (`hub { connectors connector }`, `testConnector`, `resetBreaker`) and
 * /readyz, over real `http` connectors calling real upstream servers (test/upstream.ts) that the
 * test makes healthy, failing (500) or down (stopped). Every number asserted is what the calls
 * the test makes produce.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gql, startHub, type TestHub } from './helpers.ts';
import { type Handler, json, Upstream } from './upstream.ts';

const SDL = `
type Contact { id: ID! name: String! }
type Query {
  contact(id: ID!): Contact @http(connector: "crm", path: "/contacts/{args.id}")
  outbox: [String!] @http(connector: "mail", path: "/outbox")
}
`;

const healthy: Handler = (req, res) => {
  if (req.url === '/outbox') return json(res, 200, ['welcome']);
  const id = req.url.split('/').pop()!;
  json(res, 200, { id, name: `Contact ${id}` });
};
const failing: Handler = (_req, res) => json(res, 500, { message: 'crm database on fire' });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Two upstreams and a hub: `crm` (required; breaker opens at 2 failed calls of 2) and `mail` (optional). */
async function setup() {
  const crm = await new Upstream(healthy).start();
  cleanups.push(() => crm.stop());
  const mail = await new Upstream(healthy).start();
  cleanups.push(() => mail.stop());
  const h = await startHub(
    { 'schema/api.graphql': SDL },
    {
      connectors: {
        crm: { type: 'http', baseUrl: crm.url, required: true, retry: { attempts: 0 }, breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 } },
        mail: { type: 'http', baseUrl: mail.url, retry: { attempts: 0 } },
      },
    },
  );
  cleanups.push(() => h.stop());
  return { crm, mail, h };
}

const STATUS = 'name type required healthy lastError breaker { state } requests failures cache { hits }';

async function statusOf(h: TestHub, name: string) {
  const r = await gql(h.url, `{ hub { connector(name: "${name}") { ${STATUS} } } }`);
  expect(r.body.errors).toBeUndefined();
  return (r.body.data!.hub as { connector: unknown }).connector;
}

async function testConnector(h: TestHub, name: string) {
  const r = await gql(h.url, `mutation { testConnector(name: "${name}") { name ok latencyMs error } }`);
  expect(r.body.errors).toBeUndefined();
  return (r.body.data as { testConnector: { name: string; ok: boolean; latencyMs: number; error: string | null } }).testConnector;
}

describe('management API and readiness', () => {
  it('lists every connector with the status its calls produced; connector(name) answers one, null for an unknown name', async () => {
    const { crm, h } = await setup();
    for (const id of ['1', '2']) {
      expect((await gql(h.url, `{ contact(id: "${id}") { name } }`)).body).toEqual({ data: { contact: { name: `Contact ${id}` } } });
    }
    crm.handler = failing;
    const failed = await gql(h.url, '{ contact(id: "3") { name } }');
    const upstreamMessage = `GET ${crm.url}/contacts/3 answered 500: crm database on fire`;
    expect(failed.body.errors).toMatchObject([{ message: upstreamMessage, extensions: { code: 'UPSTREAM_ERROR', connector: 'crm', status: 500 } }]);
    expect(crm.requests).toHaveLength(3);

    const r = await gql(h.url, `{ hub { connectors { ${STATUS} } } }`);
    expect(r.body).toEqual({
      data: {
        hub: {
          connectors: [
            // 1 failed call of 3 is under the 50 % threshold: the breaker stays closed.
            { name: 'crm', type: 'http', required: true, healthy: true, lastError: upstreamMessage, breaker: { state: 'CLOSED' }, requests: 3, failures: 1, cache: null },
            { name: 'mail', type: 'http', required: false, healthy: true, lastError: null, breaker: { state: 'CLOSED' }, requests: 0, failures: 0, cache: null },
          ],
        },
      },
    });

    const one = await gql(h.url, '{ hub { connector(name: "mail") { name type requests } none: connector(name: "nope") { name } } }');
    expect(one.body).toEqual({ data: { hub: { connector: { name: 'mail', type: 'http', requests: 0 }, none: null } } });
  });

  it('testConnector reports ok, then the error of an upstream that is down, then ok again once it is back', async () => {
    const { crm, h } = await setup();
    expect(await testConnector(h, 'crm')).toEqual({ name: 'crm', ok: true, latencyMs: expect.any(Number), error: null });
    // The health check is a GET of the base URL.
    expect(crm.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /']);

    const port = new URL(crm.url).port;
    await crm.stop();
    const refused = `connect ECONNREFUSED 127.0.0.1:${port}`;
    expect(await testConnector(h, 'crm')).toEqual({ name: 'crm', ok: false, latencyMs: expect.any(Number), error: refused });
    // A health check is not a call: requests and failures stay 0; the check's error is the last one.
    expect(await statusOf(h, 'crm')).toMatchObject({ healthy: false, lastError: refused, breaker: { state: 'CLOSED' }, requests: 0, failures: 0 });

    await crm.start();
    expect(await testConnector(h, 'crm')).toEqual({ name: 'crm', ok: true, latencyMs: expect.any(Number), error: null });
    expect(await statusOf(h, 'crm')).toMatchObject({ healthy: true, breaker: { state: 'CLOSED' } });
  });

  it('resetBreaker closes an open breaker at once', async () => {
    const { crm, h } = await setup();
    crm.handler = failing;
    for (let i = 0; i < 2; i++) await gql(h.url, '{ contact(id: "1") { name } }');
    // Open: the next call is not made.
    const open = await gql(h.url, '{ contact(id: "1") { name } }');
    expect(open.body.errors).toMatchObject([{ extensions: { code: 'CIRCUIT_OPEN', connector: 'crm' } }]);
    expect(crm.requests).toHaveLength(2);
    expect(await statusOf(h, 'crm')).toEqual({
      name: 'crm',
      type: 'http',
      required: true,
      healthy: false,
      lastError: `GET ${crm.url}/contacts/1 answered 500: crm database on fire`,
      breaker: { state: 'OPEN' },
      requests: 3,
      failures: 3,
      cache: null,
    });

    crm.handler = healthy;
    const reset = await gql(h.url, 'mutation { resetBreaker(name: "crm") { state } }');
    expect(reset.body).toEqual({ data: { resetBreaker: { state: 'CLOSED' } } });
    expect(await statusOf(h, 'crm')).toMatchObject({ healthy: true, breaker: { state: 'CLOSED' } });
    expect((await gql(h.url, '{ contact(id: "1") { name } }')).body).toEqual({ data: { contact: { name: 'Contact 1' } } });
    expect(crm.requests).toHaveLength(3);
    expect(await statusOf(h, 'crm')).toMatchObject({ requests: 4, failures: 3 });
  });

  it('answers an unknown connector name with BAD_USER_INPUT naming the configured ones', async () => {
    const { h } = await setup();
    for (const mutation of ['resetBreaker(name: "crn") { state }', 'testConnector(name: "crn") { ok }']) {
      const r = await gql(h.url, `mutation { ${mutation} }`);
      expect(r.body.errors).toMatchObject([
        { message: 'No connector named "crn" (configured: crm, mail)', extensions: { code: 'BAD_USER_INPUT', argument: 'name' } },
      ]);
    }
  });

  it('/readyz answers 503 while a required connector is unhealthy, and ignores optional ones', async () => {
    const { crm, mail, h } = await setup();
    const ready = await fetch(`${h.origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      connectors: [
        { name: 'crm', type: 'http', required: true, healthy: true, lastError: null },
        { name: 'mail', type: 'http', required: false, healthy: true, lastError: null },
      ],
    });

    // The optional connector's upstream goes down: still ready.
    const mailPort = new URL(mail.url).port;
    await mail.stop();
    expect((await testConnector(h, 'mail')).ok).toBe(false);
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);

    // The required one's upstream fails until its breaker opens: not ready.
    crm.handler = failing;
    for (let i = 0; i < 2; i++) await gql(h.url, '{ contact(id: "9") { name } }');
    const notReady = await fetch(`${h.origin}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({
      status: 'not ready',
      connectors: [
        { name: 'crm', type: 'http', required: true, healthy: false, lastError: `GET ${crm.url}/contacts/9 answered 500: crm database on fire` },
        { name: 'mail', type: 'http', required: false, healthy: false, lastError: `connect ECONNREFUSED 127.0.0.1:${mailPort}` },
      ],
    });

    crm.handler = healthy;
    await gql(h.url, 'mutation { resetBreaker(name: "crm") { state } }');
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
  });
});
