// `allowHosts` on http and graphql connectors: an upstream that redirects the hub elsewhere (or a
// connector pointed at the wrong host) gets no request out of it; the client gets UPSTREAM_ERROR.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startHub, type TestHub } from './helpers.ts';
import { Upstream } from './upstream.ts';

let api: Upstream;
let evil: Upstream;
let h: TestHub;

const sdl = `
type Query {
  ok: String @http(connector: "guarded", path: "/ok", select: "value")
  hop: String @http(connector: "guarded", path: "/hop", select: "value")
  away: String @http(connector: "guarded", path: "/away", select: "value")
  otherPort: String @http(connector: "pinned", path: "/other-port", select: "value")
  unguarded: String @http(connector: "open", path: "/away", select: "value")
  wrongBase: String @http(connector: "misconfigured", path: "/ok", select: "value")
  remote: String @graphql(connector: "remote", field: "value")
}
`;

beforeAll(async () => {
  evil = await new Upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ value: 'stolen', data: { value: 'stolen' } }));
  }).start();
  api = await new Upstream((req, res) => {
    const to = (location: string) => void res.writeHead(302, { location }).end();
    if (req.url === '/hop') return to(`${api.url}/ok`);
    // localhost is the same machine, but not a host the connector may call.
    if (req.url === '/away') return to(`http://localhost:${new URL(evil.url).port}/steal`);
    if (req.url === '/other-port') return to(`${evil.url}/steal`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ value: 'fine' }));
  }).start();
  const apiPort = new URL(api.url).port;
  h = await startHub(
    { 'schema/s.graphql': sdl },
    {
      connectors: {
        guarded: { type: 'http', baseUrl: api.url, followRedirects: true, allowHosts: ['127.0.0.1'], retry: { attempts: 1 } },
        pinned: { type: 'http', baseUrl: api.url, followRedirects: true, allowHosts: [`127.0.0.1:${apiPort}`], retry: { attempts: 1 } },
        open: { type: 'http', baseUrl: api.url, followRedirects: true, retry: { attempts: 1 } },
        misconfigured: { type: 'http', baseUrl: evil.url.replace('127.0.0.1', 'localhost'), allowHosts: ['*.example.com'], retry: { attempts: 1 } },
        remote: { type: 'graphql', url: `${evil.url.replace('127.0.0.1', 'localhost')}/graphql`, allowHosts: ['api.example.com'], retry: { attempts: 1 } },
      },
    },
  );
}, 60_000);
afterAll(async () => {
  await h?.stop();
  await api?.stop();
  await evil?.stop();
});

const evilPort = () => new URL(evil.url).port;

describe('allowHosts', () => {
  it('lets calls and redirects within the allowed hosts through', async () => {
    expect((await gql(h.url, '{ ok hop }')).body).toEqual({ data: { ok: 'fine', hop: 'fine' } });
  });

  it('refuses a redirect to another host before making it', async () => {
    const r = await gql(h.url, '{ away }');
    expect(r.body.data).toEqual({ away: null });
    expect(r.body.errors).toEqual([
      expect.objectContaining({
        message: `GET http://localhost:${evilPort()}/steal refused: host localhost:${evilPort()} is not in allowHosts`,
        extensions: expect.objectContaining({ code: 'UPSTREAM_ERROR', connector: 'guarded' }),
      }),
    ]);
    expect(evil.requests).toEqual([]);
  });

  it('refuses a redirect to another port when the entry names one', async () => {
    const r = await gql(h.url, '{ otherPort }');
    expect(r.body.errors?.[0]?.message).toBe(`GET http://127.0.0.1:${evilPort()}/steal refused: host 127.0.0.1:${evilPort()} is not in allowHosts`);
    expect(evil.requests).toEqual([]);
  });

  it('refuses every call of a connector whose own URL is not allowed, graphql connectors included', async () => {
    const r = await gql(h.url, '{ wrongBase remote }');
    expect(r.body.data).toEqual({ wrongBase: null, remote: null });
    expect(r.body.errors?.map((e) => [e.path, e.extensions?.code, e.message])).toEqual([
      [['wrongBase'], 'UPSTREAM_ERROR', `GET http://localhost:${evilPort()}/ok refused: host localhost:${evilPort()} is not in allowHosts`],
      [['remote'], 'UPSTREAM_ERROR', `POST http://localhost:${evilPort()}/graphql refused: host localhost:${evilPort()} is not in allowHosts`],
    ]);
    expect(evil.requests).toEqual([]);
  });

  it('is what stops it: without allowHosts the same redirect is followed', async () => {
    expect((await gql(h.url, '{ unguarded }')).body).toEqual({ data: { unguarded: 'stolen' } });
    expect(evil.requests.map((r) => r.url)).toEqual(['/steal']);
  });
});
