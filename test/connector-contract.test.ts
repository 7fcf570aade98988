// The widened connector contract, exercised by a connector type of the project's own (loaded
// through `connectorTypes`, written against 'junction'): one directive that publishes from a
// Mutation field and feeds a Subscription field, with its dependencies injected by the hub.
import { createClient, type FormattedExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { builtinRegistry } from '../src/connector-registry.ts';
import { buildSchema, SchemaError } from '../src/schema.ts';
import { parseConfig } from '../src/config.ts';
import { gql, project, startHub, type TestHub } from './helpers.ts';

// A message bus over the hub's injected pub/sub: `publish` goes through the pipeline (so it has
// the breaker, timeout and metrics), `@bus` binds a Mutation field to a publish and a
// Subscription field to the topic's events.
const BUS_TYPE = `
import { BaseConnector, connectorConfig, defineConnectorType, str, Template } from 'junction';

const schema = connectorConfig({ prefix: str().default('bus') });

export class Bus extends BaseConnector {
  async publish(topic, payload) {
    const { value } = await this.call({
      key: topic, safe: false, retryable: false,
      attempt: async () => { await this.deps.pubsub.publish(this.config.prefix + '.' + topic, payload); return { topic }; },
    });
    return value;
  }
  events(topic) { return this.deps.pubsub.asyncIterableIterator(this.config.prefix + '.' + topic); }
  async ping() {}
}

const bus = {
  name: 'bus',
  sdl: 'directive @bus(connector: String!, topic: String!, payload: String) on FIELD_DEFINITION',
  bind(use) {
    const { connector, topic, payload } = use.args;
    if (use.operation === 'subscription') {
      return { subscribe: (_p, _a, ctx) => ctx.connectors[connector].events(topic), resolve: (event) => event };
    }
    if (use.operation !== 'mutation') return ['@bus publishes from a Mutation field or feeds a Subscription field'];
    const template = new Template(payload ?? '{args.text}');
    const problems = template.problems(use.arguments.map((a) => a.name));
    if (problems.length > 0) return problems;
    return {
      resolve: async (_p, args, ctx) => {
        const text = template.render({ args, parent: {}, context: { user: ctx.user } }, String);
        await ctx.connectors[connector].publish(topic, text);
        return text;
      },
    };
  },
};

export default defineConnectorType({ type: 'bus', schema, create: (name, config, deps) => new Bus(name, config, deps), directives: [bus] });
`;

const SDL = `
type Query { ok: String }
type Mutation { announce(text: String!): String @bus(connector: "news", topic: "headlines", payload: "NEWS: {args.text}") }
type Subscription { headlines: String @bus(connector: "news", topic: "headlines") }
`;

let h: TestHub;
beforeAll(async () => {
  h = await startHub(
    { 'schema/s.graphql': SDL, 'types/bus.mjs': BUS_TYPE },
    { connectorTypes: { bus: './types/bus.mjs' }, connectors: { news: { type: 'bus' } } },
  );
});
afterAll(() => h.stop());

describe('a connector type of your own: publish targets and subscription sources', () => {
  it('a Mutation field publishes through the connector; a Subscription field streams what was published', async () => {
    const client = createClient({ url: h.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const received: FormattedExecutionResult<Record<string, unknown>, unknown>[] = [];
      const shipped = new Promise<FormattedExecutionResult<Record<string, unknown>, unknown>>((resolve, reject) => {
        client.subscribe(
          { query: 'subscription { headlines }' },
          {
            next: (r) => {
              received.push(r);
              if (r.data?.headlines === 'NEWS: hub ships') resolve(r);
            },
            error: reject,
            complete: () => undefined,
          },
        );
      });
      // The subscription is live once the server acknowledged it: publish until it is seen.
      await expect
        .poll(async () => {
          await gql(h.url, 'mutation { announce(text: "warm-up") }');
          return received.length;
        })
        .toBeGreaterThan(0);
      const r = await gql(h.url, 'mutation { announce(text: "hub ships") }');
      expect(r.body).toEqual({ data: { announce: 'NEWS: hub ships' } });
      expect(await shipped).toEqual({ data: { headlines: 'NEWS: hub ships' } });
    } finally {
      await client.dispose();
    }
  });

  it("the publishes went through the connector's pipeline: counted in hub.connectors and /metrics", async () => {
    const r = await gql(h.url, '{ hub { connector(name: "news") { type healthy requests failures breaker { state } } } }');
    const status = (r.body.data as { hub: { connector: { type: string; requests: number } } }).hub.connector;
    expect(status).toMatchObject({ type: 'bus', healthy: true, failures: 0, breaker: { state: 'CLOSED' } });
    expect(status.requests).toBeGreaterThanOrEqual(2);
    const metrics = await (await fetch(`${h.origin}/metrics`)).text();
    expect(metrics).toMatch(/junction_connector_requests_total\{connector="news",outcome="success"\} [1-9]/);
  });

  it("a use the directive refuses is a schema problem with the field's place, at check and start-up", async () => {
    const { dir, remove } = project({
      'schema/s.graphql': 'type Query { wrong: String @bus(connector: "news", topic: "t") }\n',
      'types/bus.mjs': BUS_TYPE,
    });
    try {
      const config = await parseConfig(
        { connectorTypes: { bus: './types/bus.mjs' }, connectors: { news: { type: 'bus' } } },
        { file: 'junction.config.yaml', baseDir: dir },
      );
      expect(config.registry.names).toEqual([...builtinRegistry.names, 'bus']);
      const error = await buildSchema({
        schema: [`${dir}/schema/**/*.graphql`],
        resolvers: [],
        baseDir: dir,
        authEnabled: false,
        registry: config.registry,
        connectors: { news: 'bus' },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaError);
      expect((error as SchemaError).message).toBe(
        'schema/s.graphql:1:14: Query.wrong @bus: @bus publishes from a Mutation field or feeds a Subscription field',
      );
    } finally {
      remove();
    }
  });
});
