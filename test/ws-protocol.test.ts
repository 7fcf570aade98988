// The careless and the hostile WebSocket client, speaking raw frames (not graphql-ws's friendly
// client): every protocol violation is closed with the graphql-transport-ws close code, dead
// sockets are dropped, and connection/operation limits refuse with a clear answer. Also the
// slow HTTP client that trickles its headers.
import { connect as tcpConnect } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHub, type TestHub } from './helpers.ts';

const PROTOCOL = 'graphql-transport-ws';
const SECRET = 'ws-protocol-secret-0123456789abcdef';

const sdl = `
type Query { ok: String! }
type Subscription { forever: Int! }
`;
const resolvers = `
export default {
  Query: { ok: () => 'fine' },
  Subscription: {
    // Never publishes: an operation that stays open until completed.
    forever: { subscribe: (_, __, { pubsub }) => pubsub.asyncIterableIterator('NEVER') },
  },
};
`;

let h: TestHub;
let authed: TestHub;
beforeAll(async () => {
  h = await startHub(
    { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers },
    {
      server: {
        // Short enough to test quickly, long enough for a client on a busy machine to keep up.
        ws: { connectionInitTimeoutMs: 1_000, keepAliveMs: 1_000, maxConnectionsPerIp: 3, maxSubscriptionsPerConnection: 2 },
        timeouts: { headersMs: 1_000, requestMs: 2_000 },
      },
    },
  );
  authed = await startHub(
    { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers },
    { auth: { jwt: { secret: SECRET }, required: true } },
  );
}, 60_000);
afterAll(async () => {
  await h?.stop();
  await authed?.stop();
});

interface Raw {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  /** Resolves with the close code and reason the server sent. */
  closed: Promise<{ code: number; reason: string }>;
  send: (frame: unknown) => void;
  /** The next message matching, already received or to come. */
  next: (match: (m: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
}

function raw(url: string, options: { protocol?: string | null; autoPong?: boolean } = {}): Promise<Raw> {
  const protocols = options.protocol === null ? [] : [options.protocol ?? PROTOCOL];
  const ws = new WebSocket(url, protocols, { autoPong: options.autoPong ?? true });
  const messages: Record<string, unknown>[] = [];
  const waiters: { match: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as Record<string, unknown>;
    messages.push(m);
    for (const w of [...waiters]) if (w.match(m)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(m));
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  return new Promise((resolve, reject) => {
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        closed,
        send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
        next: (match) => {
          const found = messages.find(match);
          return found ? Promise.resolve(found) : new Promise((r) => waiters.push({ match, resolve: r }));
        },
      }),
    );
    ws.once('error', reject);
  });
}

async function acked(url = h.wsUrl, payload?: unknown): Promise<Raw> {
  const c = await raw(url);
  c.send({ type: 'connection_init', ...(payload !== undefined && { payload }) });
  await c.next((m) => m.type === 'connection_ack');
  return c;
}

describe('graphql-ws protocol violations get their close codes', () => {
  it('closes a malformed message with 4400', async () => {
    const c = await raw(h.wsUrl);
    c.send('{not json');
    expect(await c.closed).toEqual({ code: 4400, reason: 'Invalid message received' });
  });

  it('closes a message of an unknown shape with 4400, even after the ack', async () => {
    const c = await acked();
    c.send({ type: 'subscribe', id: 'a', payload: { query: 42 } });
    expect(await c.closed).toEqual({ code: 4400, reason: 'Invalid message received' });
  });

  it('closes a subscribe before connection_ack with 4401', async () => {
    const c = await raw(h.wsUrl);
    c.send({ type: 'subscribe', id: '1', payload: { query: '{ ok }' } });
    expect(await c.closed).toEqual({ code: 4401, reason: 'Unauthorized' });
  });

  it('closes a connection whose credentials are refused with 4403', async () => {
    const c = await raw(authed.wsUrl);
    c.send({ type: 'connection_init', payload: { authorization: 'Bearer not-a-token' } });
    expect(await c.closed).toEqual({ code: 4403, reason: 'Forbidden' });
    const anonymous = await raw(authed.wsUrl);
    anonymous.send({ type: 'connection_init' });
    expect(await anonymous.closed).toEqual({ code: 4403, reason: 'Forbidden' });
  });

  it('accepts a valid token on the same hub (the 4403 is about the credentials)', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    const c = await acked(authed.wsUrl, { authorization: `Bearer ${token}` });
    c.send({ type: 'subscribe', id: 'q', payload: { query: '{ ok }' } });
    expect(await c.next((m) => m.type === 'next')).toEqual({ id: 'q', type: 'next', payload: { data: { ok: 'fine' } } });
    c.ws.close();
  });

  it('closes a socket that never sends connection_init with 4408', async () => {
    const c = await raw(h.wsUrl);
    expect(await c.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
  });

  it('closes a duplicate subscription id with 4409', async () => {
    const c = await acked();
    // Messages are handled in order: the first subscribe is registered when the second arrives.
    c.send({ type: 'subscribe', id: 'same', payload: { query: 'subscription { forever }' } });
    c.send({ type: 'subscribe', id: 'same', payload: { query: 'subscription { forever }' } });
    expect(await c.closed).toEqual({ code: 4409, reason: 'Subscriber for same already exists' });
  });

  it('closes a second connection_init with 4429', async () => {
    const c = await acked();
    c.send({ type: 'connection_init' });
    expect(await c.closed).toEqual({ code: 4429, reason: 'Too many initialisation requests' });
  });

  it('closes a socket that names no graphql-transport-ws subprotocol with 4406', async () => {
    const c = await raw(h.wsUrl, { protocol: null });
    expect(await c.closed).toEqual({ code: 4406, reason: 'Subprotocol not acceptable' });
  });
});

describe('dead and greedy WebSocket clients', () => {
  it('pings an idle socket and drops it when no pong comes back', async () => {
    const c = await raw(h.wsUrl, { autoPong: false });
    c.send({ type: 'connection_init' });
    await c.next((m) => m.type === 'connection_ack');
    let pinged = 0;
    c.ws.on('ping', () => pinged++);
    // Terminated, not closed: no close frame, so the client sees 1006.
    expect((await c.closed).code).toBe(1006);
    expect(pinged).toBeGreaterThan(0);
  });

  it('keeps a socket that answers pings open past several keep-alive rounds', async () => {
    const c = await acked();
    let pinged = 0;
    await new Promise<void>((resolve) => c.ws.on('ping', () => ++pinged === 3 && resolve()));
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.send({ type: 'subscribe', id: 'q', payload: { query: '{ ok }' } });
    expect(await c.next((m) => m.type === 'next')).toEqual({ id: 'q', type: 'next', payload: { data: { ok: 'fine' } } });
    c.ws.close();
  });

  it('refuses an operation over maxSubscriptionsPerConnection with RATE_LIMITED, and takes one once another completed', async () => {
    const c = await acked();
    for (const id of ['s1', 's2']) c.send({ type: 'subscribe', id, payload: { query: 'subscription { forever }' } });
    c.send({ type: 'subscribe', id: 's3', payload: { query: 'subscription { forever }' } });
    expect(await c.next((m) => m.id === 's3')).toEqual({
      id: 's3',
      type: 'error',
      payload: [{ message: 'Too many operations on this connection (limit 2); complete one first', extensions: { code: 'RATE_LIMITED', limit: 2 } }],
    });
    c.send({ type: 'complete', id: 's1' });
    c.send({ type: 'subscribe', id: 's4', payload: { query: '{ ok }' } });
    expect(await c.next((m) => m.id === 's4')).toEqual({ id: 's4', type: 'next', payload: { data: { ok: 'fine' } } });
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.ws.close();
  });

  it('refuses a WebSocket over maxConnectionsPerIp with HTTP 429, and takes one again once a socket closed', async () => {
    const open = await Promise.all([acked(), acked(), acked()]);
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(h.wsUrl, PROTOCOL);
      ws.once('open', () => reject(new Error('a fourth connection was accepted')));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(refused).toEqual({ status: 429, body: JSON.stringify({ error: 'too many WebSocket connections from this address (limit 3)' }) });
    open[0]!.ws.close();
    await open[0]!.closed;
    // The hub counts the close when its own side of the socket closes: retry until it has.
    let again: Raw | undefined;
    for (let i = 0; i < 100 && !again; i++) {
      again = await acked().catch(async () => {
        await new Promise((r) => setTimeout(r, 20));
        return undefined;
      });
    }
    expect(again?.ws.readyState).toBe(WebSocket.OPEN);
    for (const c of [again!, open[1]!, open[2]!]) c.ws.close();
    await Promise.all([again!, open[1]!, open[2]!].map((c) => c.closed));
  });
});

describe('slow HTTP clients', () => {
  it('drops a client that trickles its headers one byte at a time with 408', async () => {
    const { port } = new URL(h.url);
    const socket = tcpConnect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const request = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(2_000);
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= request.length) return clearInterval(timer);
      socket.write(request[i++]!);
    }, 50);
    await ended;
    clearInterval(timer);
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    // It never got to send the whole request.
    expect(i).toBeLessThan(request.length);
  });

  it('still serves a client that sends its request in time', async () => {
    const res = await fetch(new URL('/healthz', h.url));
    expect(res.status).toBe(200);
  });
});
