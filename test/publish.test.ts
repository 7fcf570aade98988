// `@publish`, the directive every queue connector type shares, through a connector type of the
// project's own (loaded with `connectorTypes`, written against 'junction' and `BrokerConnector`)
// that "publishes" by POSTing to a real HTTP server this test starts: receipts, payload
// templates, idempotency keys (repeats, concurrent repeats, a failed first attempt), destination
// checks and the problems a wrong use is refused with. Each broker's own test covers its broker.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.ts';
import { buildSchema, SchemaError } from '../src/schema.ts';
import { gql, project, startHub, type TestHub } from './helpers.ts';

const RELAY_TYPE = `
import { BrokerConnector, brokerOptions, connectorConfig, defineConnectorType, httpUrl, publishDirective, UpstreamError } from 'junction';

const schema = connectorConfig({ url: httpUrl(), ...brokerOptions });

export class Relay extends BrokerConnector {
  async send(message, signal) {
    const res = await fetch(this.config.url + '/' + encodeURIComponent(message.to), {
      method: 'POST', body: message.body, signal,
      headers: { 'content-type': 'application/json', ...(message.idempotencyKey ? { 'idempotency-key': message.idempotencyKey } : {}) },
    });
    if (!res.ok) throw new UpstreamError(this.name, 'relay refused: ' + res.status, { status: res.status });
    return { messageId: (await res.json()).id };
  }
  destinationProblem(to) { return /^[a-z.]+$/.test(to) ? undefined : 'a destination is lower-case letters and dots'; }
  async stopConsuming() {}
  async disconnect() {}
  async ping() {}
}

export default defineConnectorType({ type: 'relay', schema, create: (n, c, d) => new Relay(n, c, d), directives: [publishDirective] });
`;

const SDL = `
type Query { ok: String }
input OrderInput { sku: String!, qty: Int! }
type Mutation {
  placeOrder(input: OrderInput!, key: String): PublishReceipt! @publish(connector: "relay", to: "orders.placed", idempotencyKey: "{args.key}")
  restock(sku: String!, region: String!): PublishReceipt! @publish(connector: "relay", to: "stock.{args.region}", payload: "{\\"sku\\": {args.sku}, \\"kind\\": \\"restock\\"}")
}
`;

interface Received {
  to: string;
  body: unknown;
  key: string | undefined;
}

let upstream: Server;
let upstreamUrl: string;
const received: Received[] = [];
/** Answers for the next POSTs, in order: a status, or 'slow' (answered after a pause). */
const script: (number | 'slow')[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const next = script.shift() ?? 200;
      const answer = () => {
        if (typeof next === 'number' && next !== 200) {
          res.writeHead(next).end();
          return;
        }
        received.push({ to: decodeURIComponent(req.url!.slice(1)), body: JSON.parse(body), key: req.headers['idempotency-key'] as string | undefined });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `msg-${received.length}` }));
      };
      if (next === 'slow') setTimeout(answer, 300);
      else answer();
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

describe('@publish through a connector type of your own', () => {
  let h: TestHub;
  beforeAll(async () => {
    h = await startHub(
      { 'schema/s.graphql': SDL, 'types/relay.mjs': RELAY_TYPE },
      { connectorTypes: { relay: './types/relay.mjs' }, connectors: { relay: { type: 'relay', url: upstreamUrl, breaker: { enabled: false } } } },
    );
  });
  afterAll(() => h.stop());
  beforeEach(() => {
    received.length = 0;
    script.length = 0;
  });

  const place = (key?: string, qty = 1) =>
    gql(h.url, 'mutation($key: String, $qty: Int!) { placeOrder(input: { sku: "A-1", qty: $qty }, key: $key) { connector to messageId duplicate } }', {
      key,
      qty,
    });

  it("answers the broker's receipt; the payload is the input argument as JSON", async () => {
    const r = await place();
    expect(r.body).toEqual({ data: { placeOrder: { connector: 'relay', to: 'orders.placed', messageId: 'msg-1', duplicate: false } } });
    expect(received).toEqual([{ to: 'orders.placed', body: { sku: 'A-1', qty: 1 }, key: undefined }]);
  });

  it('fills the destination and a JSON payload template from the arguments, values JSON-encoded', async () => {
    const r = await gql(h.url, 'mutation { restock(sku: "B \\"2\\"", region: "eu") { to duplicate } }');
    expect(r.body).toEqual({ data: { restock: { to: 'stock.eu', duplicate: false } } });
    expect(received).toEqual([{ to: 'stock.eu', body: { sku: 'B "2"', kind: 'restock' }, key: undefined }]);
  });

  it('a repeated idempotency key publishes once and answers the first receipt with duplicate: true', async () => {
    const key = `order-${Date.now()}`;
    const first = await place(key);
    const again = await place(key, 99); // a retry, even with another body, is the same publish
    expect(first.body.data).toEqual({ placeOrder: { connector: 'relay', to: 'orders.placed', messageId: 'msg-1', duplicate: false } });
    expect(again.body.data).toEqual({ placeOrder: { connector: 'relay', to: 'orders.placed', messageId: 'msg-1', duplicate: true } });
    expect(received).toEqual([{ to: 'orders.placed', body: { sku: 'A-1', qty: 1 }, key }]);
  });

  it('repeats sent while the first publish is still waiting for its confirmation wait for it: one publish, one receipt', async () => {
    script.push('slow');
    const key = `burst-${Date.now()}`;
    const answers = await Promise.all(Array.from({ length: 5 }, () => place(key)));
    expect(received).toHaveLength(1);
    const receipts = answers.map((a) => (a.body.data as { placeOrder: { messageId: string; duplicate: boolean } }).placeOrder);
    expect(new Set(receipts.map((r) => r.messageId))).toEqual(new Set(['msg-1']));
    expect(receipts.filter((r) => !r.duplicate)).toHaveLength(1);
  });

  it('a refused publish is UPSTREAM_ERROR, never a receipt, and frees its key: the retry publishes', async () => {
    script.push(503);
    const key = `retry-${Date.now()}`;
    const failed = await place(key);
    expect(failed.body.data).toBeNull();
    expect(failed.body.errors?.[0]).toMatchObject({ path: ['placeOrder'], extensions: { code: 'UPSTREAM_ERROR', connector: 'relay' } });
    const retried = await place(key);
    expect(retried.body.data).toEqual({ placeOrder: { connector: 'relay', to: 'orders.placed', messageId: 'msg-1', duplicate: false } });
    expect(received).toHaveLength(1);
  });

  it('a destination the connector refuses is BAD_USER_INPUT: nothing sent, not counted as a failure', async () => {
    const before = await gql(h.url, '{ hub { connector(name: "relay") { failures } } }');
    const r = await gql(h.url, 'mutation { restock(sku: "x", region: "EU/../admin") { to } }');
    expect(r.body.errors?.[0]).toMatchObject({
      message: 'relay: cannot publish to "stock.EU/../admin": a destination is lower-case letters and dots',
      extensions: { code: 'BAD_USER_INPUT', connector: 'relay' },
    });
    expect(received).toEqual([]);
    const after = await gql(h.url, '{ hub { connector(name: "relay") { failures } } }');
    expect(after.body.data).toEqual(before.body.data);
  });
});

describe('@publish: uses refused at schema build', () => {
  async function problems(sdl: string, connectors: Record<string, unknown>): Promise<string> {
    const { dir, remove } = project({ 'schema/s.graphql': sdl, 'types/relay.mjs': RELAY_TYPE });
    try {
      const config = await parseConfig({ connectorTypes: { relay: './types/relay.mjs' }, connectors }, { file: 'junction.config.yaml', baseDir: dir });
      const error = await buildSchema({
        schema: [`${dir}/schema/**/*.graphql`],
        resolvers: [],
        baseDir: dir,
        authEnabled: false,
        registry: config.registry,
        connectors: Object.fromEntries(Object.entries(config.connectors).map(([n, c]) => [n, c.type])),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaError);
      return (error as SchemaError).message;
    } finally {
      remove();
    }
  }
  const relay = { relay: { type: 'relay', url: 'http://127.0.0.1:9' } };

  it('on a Query field, returning another type, or without input or payload', async () => {
    const message = await problems(
      `type Query { q: PublishReceipt @publish(connector: "relay", to: "a") }
type Mutation { m(x: Int): String @publish(connector: "relay", to: "a", idempotencyKey: "{args.missing}") }`,
      relay,
    );
    expect(message.split('\n')).toEqual([
      'schema/s.graphql:1:14: Query.q @publish: @publish binds Mutation fields only (publishing is a mutation)',
      'schema/s.graphql:1:14: Query.q @publish: without payload, the field needs an `input` argument: it is what is published, as JSON',
      'schema/s.graphql:2:17: Mutation.m @publish: the field must return PublishReceipt, not String',
      'schema/s.graphql:2:17: Mutation.m @publish: without payload, the field needs an `input` argument: it is what is published, as JSON',
      'schema/s.graphql:2:17: Mutation.m @publish: {args.missing} names an argument the field does not have (arguments: x)',
    ]);
  });

  it('naming a connector whose type does not publish', async () => {
    const message = await problems('type Query { ok: String }\ntype Mutation { m(input: String): PublishReceipt! @publish(connector: "api", to: "a") }', {
      ...relay,
      api: { type: 'http', baseUrl: 'http://127.0.0.1:9' },
    });
    expect(message).toMatch(/^schema\/s\.graphql:2:17: Mutation\.m @publish: connector "api" is of type http, not (\w+ or )*relay$/);
  });
});
