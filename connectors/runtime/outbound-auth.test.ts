import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { Events, OAuth2Server, type MutableResponse, type MutableToken } from 'oauth2-mock-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gql, startHub } from '../../test/helpers.ts';
import { UpstreamError } from './errors.ts';
import {
  createOutboundAuth,
  outboundAuthSchema,
  TokenEndpointError,
  type OutboundAuth,
  type OutboundAuthConfig,
} from './outbound-auth.ts';

// Real servers only: an OAuth2 authorization server (oauth2-mock-server) issuing signed JWTs, an
// "API" (node:http) that checks what each request carries, and, for the failure modes the mock
// cannot produce (slow, HTML, redirect), small token servers of our own. fetch is never stubbed.

const CLIENT_ID = 'junction-client';
const CLIENT_SECRET = 'S3cr3t-client-secret!';

// ---- the OAuth2 server --------------------------------------------------------------------

interface TokenRequest {
  body: Record<string, string>;
  headers: IncomingHttpHeaders;
}

interface TokenServer {
  server: OAuth2Server;
  port: number;
  tokenUrl: string;
  /** Every token request that reached the token endpoint, in order. */
  requests: TokenRequest[];
  /** Access tokens issued, in order. */
  issued: string[];
  /** Seconds put in `expires_in`; undefined leaves it out. Default 3600. */
  expiresIn: number | string | undefined;
  /** Changes the response before it is sent (after the client was authenticated). */
  tamper: ((response: MutableResponse) => void) | undefined;
  stop(): Promise<void>;
}

/** Issuers whose signatures the API accepts. */
const trusted: OAuth2Server[] = [];
/** Tokens the API refuses although they are validly signed (revoked upstream). */
const revoked = new Set<string>();

/** Which client credentials a token request carried: from the body or from HTTP Basic (RFC 6749 §2.3.1). */
function clientOf(req: TokenRequest): { id?: string; secret?: string; via: 'body' | 'basic' | 'none' } {
  const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
  if (basic?.[1]) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return {
      id: decodeURIComponent(decoded.slice(0, colon)),
      secret: decodeURIComponent(decoded.slice(colon + 1)),
      via: 'basic',
    };
  }
  if (req.body.client_id !== undefined) return { id: req.body.client_id, secret: req.body.client_secret, via: 'body' };
  return { via: 'none' };
}

async function startTokenServer(
  clients: Record<string, string> = { [CLIENT_ID]: CLIENT_SECRET },
  port = 0,
): Promise<TokenServer> {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  let jti = 0;
  const state: TokenServer = {
    server,
    port: 0,
    tokenUrl: '',
    requests: [],
    issued: [],
    expiresIn: 3600,
    tamper: undefined,
    stop: () => server.stop(),
  };
  // Two tokens signed in the same second would otherwise be identical.
  server.service.on(Events.BeforeTokenSigning, (token: MutableToken) => {
    token.payload.jti = `token-${++jti}`;
  });
  server.service.on(Events.BeforeResponse, (response: MutableResponse, req: IncomingMessage & { body: Record<string, string> }) => {
    const request: TokenRequest = { body: { ...req.body }, headers: req.headers };
    state.requests.push(request);
    const client = clientOf(request);
    if (client.id === undefined || clients[client.id] === undefined || clients[client.id] !== client.secret) {
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'client authentication failed' };
      return;
    }
    if (response.body === '') return;
    if (state.expiresIn === undefined) delete response.body.expires_in;
    else response.body.expires_in = state.expiresIn;
    state.tamper?.(response);
    if (response.statusCode === 200 && typeof response.body === 'object' && typeof response.body.access_token === 'string') {
      state.issued.push(response.body.access_token);
    }
  });
  await server.start(port, '127.0.0.1');
  state.port = server.address().port;
  state.tokenUrl = `http://127.0.0.1:${state.port}/token`;
  trusted.push(server);
  return state;
}

// ---- the API ------------------------------------------------------------------------------

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
}

let api: Server;
let apiUrl: string;
/** Every request the API received, in order. */
let seen: Seen[] = [];

async function tokenIsValid(token: string): Promise<boolean> {
  if (revoked.has(token)) return false;
  const keys = createLocalJWKSet({ keys: trusted.flatMap((s) => s.issuer.keys.toJSON()) });
  try {
    await jwtVerify(token, keys);
    return true;
  } catch {
    return false;
  }
}

async function handleApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
  seen.push({ url: req.url ?? '', headers: req.headers });
  // /oauth/…: only a valid token from a trusted issuer passes. /static/…: a fixed bearer token.
  if (req.url?.startsWith('/oauth/')) {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined || !(await tokenIsValid(token))) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      return;
    }
  }
  if (req.url?.startsWith('/static/') && req.headers.authorization !== 'Bearer right-token') {
    res.writeHead(401).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
}

interface CallResult {
  status: number;
  attempts: number;
}

/** What the connector runtime does for one upstream call: apply, send, and on 401 retry once if told to. */
async function call(auth: OutboundAuth, path: string, signal?: AbortSignal): Promise<CallResult> {
  for (let attempt = 1; ; attempt++) {
    const request = { url: new URL(path, apiUrl), headers: new Headers({ accept: 'application/json' }) };
    await auth.apply(request, signal);
    const response = await fetch(request.url, { headers: request.headers, ...(signal && { signal }) });
    await response.arrayBuffer();
    if (response.status === 401 && attempt === 1 && (await auth.unauthorized())) continue;
    return { status: response.status, attempts: attempt };
  }
}

function bearerOf(s: Seen | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(s?.headers.authorization ?? '')?.[1];
}

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** A token endpoint of our own, for answers the mock cannot give. */
async function ownServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function oauth2(overrides: Partial<Extract<OutboundAuthConfig, { type: 'oauth2' }>> = {}): OutboundAuthConfig {
  return outboundAuthSchema.parse({
    type: 'oauth2',
    tokenUrl: tokens.tokenUrl,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    ...overrides,
  });
}

/** Rejection of a promise that must reject. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

let tokens: TokenServer;

beforeAll(async () => {
  api = createServer((req, res) => {
    handleApi(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  api.listen(0, '127.0.0.1');
  await once(api, 'listening');
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  tokens = await startTokenServer();
});

afterAll(async () => {
  await tokens.stop();
  api.closeAllConnections();
  await new Promise<void>((resolve) => api.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  tokens.requests = [];
  tokens.issued = [];
  tokens.expiresIn = 3600;
  tokens.tamper = undefined;
  revoked.clear();
});

// ---- configuration ------------------------------------------------------------------------

describe('outboundAuthSchema', () => {
  const issues = (input: unknown) => {
    const result = outboundAuthSchema.safeParse(input);
    expect(result.success).toBe(false);
    return result.error?.issues.map((i) => ({ path: i.path, message: i.message }));
  };

  it('fills in the defaults of each type', () => {
    expect(outboundAuthSchema.parse({ type: 'apiKey', value: 'k-123' })).toEqual({
      type: 'apiKey',
      in: 'header',
      name: 'X-API-Key',
      value: 'k-123',
    });
    expect(outboundAuthSchema.parse({ type: 'apiKey', in: 'query', name: 'api_key', value: 'k' })).toEqual({
      type: 'apiKey',
      in: 'query',
      name: 'api_key',
      value: 'k',
    });
    expect(outboundAuthSchema.parse({ type: 'bearer', token: 't' })).toEqual({ type: 'bearer', token: 't' });
    expect(outboundAuthSchema.parse({ type: 'basic', username: 'u', password: '' })).toEqual({
      type: 'basic',
      username: 'u',
      password: '',
    });
    expect(
      outboundAuthSchema.parse({ type: 'oauth2', tokenUrl: 'https://auth.example.com/oauth/token', clientId: 'id', clientSecret: 's' }),
    ).toEqual({
      type: 'oauth2',
      tokenUrl: 'https://auth.example.com/oauth/token',
      clientId: 'id',
      clientSecret: 's',
      refreshSkewMs: 30_000,
      clientAuth: 'body',
    });
  });

  it('names an unknown or missing type and lists the known ones', () => {
    const message = 'expected an auth type: apiKey, bearer, basic, oauth2';
    expect(issues({ type: 'digest', username: 'u' })).toEqual([{ path: ['type'], message }]);
    expect(issues({ token: 't' })).toEqual([{ path: ['type'], message }]);
    expect(issues('Bearer abc')).toEqual([{ path: [], message: 'expected a mapping with a type (apiKey, bearer, basic, oauth2)' }]);
  });

  it('names each missing or bad oauth2 key, never repeating a secret', () => {
    expect(issues({ type: 'oauth2', clientId: 'id', clientSecret: CLIENT_SECRET })).toEqual([
      { path: ['tokenUrl'], message: 'expected the token endpoint URL (http or https)' },
    ]);
    const bad = issues({
      type: 'oauth2',
      tokenUrl: 'ftp://auth.example.com/token',
      clientSecret: CLIENT_SECRET,
      refreshSkewMs: -5,
      clientAuth: 'header',
    });
    expect(bad).toEqual([
      { path: ['tokenUrl'], message: 'expected the token endpoint URL (http or https)' },
      { path: ['clientId'], message: 'expected a client id' },
      { path: ['refreshSkewMs'], message: 'expected a number of milliseconds (an integer, 0 or more)' },
      { path: ['clientAuth'], message: 'expected "body" or "basic"' },
    ]);
    expect(JSON.stringify(bad)).not.toContain(CLIENT_SECRET);
  });

  it('checks the other types: query name, RFC 7617 username, empty values, unknown keys', () => {
    expect(issues({ type: 'apiKey', in: 'query', value: 'k' })).toEqual([
      { path: ['name'], message: 'expected the query parameter name (required when in is "query")' },
    ]);
    expect(issues({ type: 'apiKey', in: 'cookie', value: 'k' })).toEqual([{ path: ['in'], message: 'expected "header" or "query"' }]);
    expect(issues({ type: 'apiKey', name: 'X Key', value: 'k' })).toEqual([
      { path: ['name'], message: "expected a header name (letters, digits and !#$%&'*+-.^_`|~)" },
    ]);
    expect(issues({ type: 'bearer', token: '' })).toEqual([{ path: ['token'], message: 'expected a token (a non-empty string)' }]);
    expect(issues({ type: 'basic', username: 'a:b', password: 'p' })).toEqual([
      { path: ['username'], message: 'expected a username without ":" (RFC 7617)' },
    ]);
    expect(issues({ type: 'basic', username: 'a' })).toEqual([{ path: ['password'], message: 'expected a password (a string)' }]);
    const unknown = outboundAuthSchema.safeParse({ type: 'bearer', token: 't', tokn: 'x' });
    expect(unknown.error?.issues).toMatchObject([{ code: 'unrecognized_keys', keys: ['tokn'], path: [] }]);
  });
});

// ---- static credentials -------------------------------------------------------------------

describe('static credentials, end to end', () => {
  it('apiKey in a header: X-API-Key by default, or the name given', async () => {
    const auth = createOutboundAuth(outboundAuthSchema.parse({ type: 'apiKey', value: 'key-abc' }), {});
    expect(await call(auth, '/items')).toEqual({ status: 200, attempts: 1 });
    const named = createOutboundAuth(outboundAuthSchema.parse({ type: 'apiKey', name: 'Api-Token', value: 'key-def' }), {});
    expect(await call(named, '/items')).toEqual({ status: 200, attempts: 1 });

    expect(seen.map((s) => [s.url, s.headers['x-api-key'], s.headers['api-token'], s.headers.authorization])).toEqual([
      ['/items', 'key-abc', undefined, undefined],
      ['/items', undefined, 'key-def', undefined],
    ]);
  });

  it('apiKey in the query: one parameter, replacing one already there, encoded, other parameters kept', async () => {
    const auth = createOutboundAuth(outboundAuthSchema.parse({ type: 'apiKey', in: 'query', name: 'api_key', value: 'k&y=1 2' }), {});
    expect(await call(auth, '/items?api_key=stale&page=2&api_key=older')).toEqual({ status: 200, attempts: 1 });

    expect(seen).toHaveLength(1);
    const url = new URL(seen[0]?.url ?? '', apiUrl);
    expect(url.pathname).toBe('/items');
    expect(url.searchParams.getAll('api_key')).toEqual(['k&y=1 2']);
    expect(url.searchParams.getAll('page')).toEqual(['2']);
    expect(seen[0]?.headers['x-api-key']).toBeUndefined();
  });

  it('bearer: Authorization: Bearer <token>', async () => {
    const auth = createOutboundAuth(outboundAuthSchema.parse({ type: 'bearer', token: 'right-token' }), {});
    expect(await call(auth, '/static/me')).toEqual({ status: 200, attempts: 1 });
    expect(seen.map((s) => s.headers.authorization)).toEqual(['Bearer right-token']);
  });

  it('basic: RFC 7617 base64 of user:pass in UTF-8', async () => {
    const aladdin = createOutboundAuth(outboundAuthSchema.parse({ type: 'basic', username: 'Aladdin', password: 'open sesame' }), {});
    await call(aladdin, '/a');
    // RFC 7617 §2.1: user "test", password "123£" in UTF-8.
    const utf8 = createOutboundAuth(outboundAuthSchema.parse({ type: 'basic', username: 'test', password: '123£' }), {});
    await call(utf8, '/b');
    const colon = createOutboundAuth(outboundAuthSchema.parse({ type: 'basic', username: 'Zoë', password: 'pä:ss wörd' }), {});
    await call(colon, '/c');

    expect(seen.map((s) => s.headers.authorization)).toEqual([
      'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==',
      'Basic dGVzdDoxMjPCow==',
      `Basic ${Buffer.from('Zoë:pä:ss wörd', 'utf8').toString('base64')}`,
    ]);
    const decoded = Buffer.from(seen[2]?.headers.authorization?.slice('Basic '.length) ?? '', 'base64').toString('utf8');
    expect(decoded).toBe('Zoë:pä:ss wörd');
  });

  it('a 401 is not retried with static credentials: unauthorized() is false', async () => {
    const auth = createOutboundAuth(outboundAuthSchema.parse({ type: 'bearer', token: 'wrong-token' }), {});
    expect(await auth.unauthorized()).toBe(false);
    expect(await call(auth, '/static/me')).toEqual({ status: 401, attempts: 1 });
    expect(seen).toHaveLength(1);
  });

  it('identity is stable, differs between credentials and never contains the secret', () => {
    const identity = (input: unknown) => createOutboundAuth(outboundAuthSchema.parse(input), {}).identity;
    const key = identity({ type: 'apiKey', value: 'key-abc' });
    expect(key).toMatch(/^apiKey:[0-9a-f]{16}$/);
    expect(identity({ type: 'apiKey', value: 'key-abc' })).toBe(key);
    expect(identity({ type: 'apiKey', value: 'key-abd' })).not.toBe(key);
    expect(identity({ type: 'apiKey', in: 'query', name: 'X-API-Key', value: 'key-abc' })).not.toBe(key);

    const bearer = identity({ type: 'bearer', token: 'right-token' });
    expect(bearer).toMatch(/^bearer:[0-9a-f]{16}$/);
    expect(bearer).not.toContain('right-token');

    // Basic: the user is the principal; the password plays no part.
    expect(identity({ type: 'basic', username: 'ann', password: 'p1' })).toBe(identity({ type: 'basic', username: 'ann', password: 'p2' }));
    expect(identity({ type: 'basic', username: 'ann', password: 'p1' })).not.toBe(identity({ type: 'basic', username: 'bob', password: 'p1' }));

    const base = { type: 'oauth2', tokenUrl: 'https://auth.example.com/token', clientId: 'id', clientSecret: CLIENT_SECRET };
    const client = identity(base);
    expect(client).toMatch(/^oauth2:[0-9a-f]{16}$/);
    expect(identity({ ...base, clientSecret: 'rotated-secret' })).toBe(client);
    expect(identity({ ...base, clientId: 'other' })).not.toBe(client);
    expect(identity({ ...base, scope: 'read' })).not.toBe(client);
  });
});

// ---- oauth2 ---------------------------------------------------------------------------------

describe('oauth2 client credentials', () => {
  it('POSTs grant_type, scope, audience and the client credentials in the form body', async () => {
    const auth = createOutboundAuth(oauth2({ scope: 'orders:read orders:write', audience: 'https://api.example.com' }), {});
    expect(await call(auth, '/oauth/orders')).toEqual({ status: 200, attempts: 1 });

    expect(tokens.requests).toHaveLength(1);
    const [request] = tokens.requests;
    expect(request?.body).toEqual({
      grant_type: 'client_credentials',
      scope: 'orders:read orders:write',
      audience: 'https://api.example.com',
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
    });
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request?.headers.authorization).toBeUndefined();
    expect(bearerOf(seen[0])).toBe(tokens.issued[0]);
  });

  it('sends the client credentials as HTTP Basic (form-encoded first) with clientAuth: basic', async () => {
    const id = 'junction client/1';
    const secret = 'p@ss:w/rd+1 £';
    const server = await startTokenServer({ [id]: secret });
    try {
      const auth = createOutboundAuth(
        outboundAuthSchema.parse({ type: 'oauth2', tokenUrl: server.tokenUrl, clientId: id, clientSecret: secret, clientAuth: 'basic' }),
        {},
      );
      expect(await call(auth, '/oauth/orders')).toEqual({ status: 200, attempts: 1 });
      expect(server.requests).toHaveLength(1);
      const [request] = server.requests;
      expect(request?.body).toEqual({ grant_type: 'client_credentials' });
      const expected = Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`, 'utf8').toString('base64');
      expect(request?.headers.authorization).toBe(`Basic ${expected}`);
      expect(clientOf(request!)).toEqual({ id, secret, via: 'basic' });
      expect(bearerOf(seen[0])).toBe(server.issued[0]);
    } finally {
      await server.stop();
    }
  });

  it('fetches the token once for 50 concurrent calls, then serves it from the cache', async () => {
    const auth = createOutboundAuth(oauth2(), {});
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(auth, `/oauth/items/${i}`)));
    expect(results).toEqual(Array.from({ length: 50 }, () => ({ status: 200, attempts: 1 })));
    expect(tokens.requests).toHaveLength(1);
    expect(tokens.issued).toHaveLength(1);
    expect(seen).toHaveLength(50);
    expect(new Set(seen.map(bearerOf))).toEqual(new Set([tokens.issued[0]]));

    expect(await call(auth, '/oauth/items/again')).toEqual({ status: 200, attempts: 1 });
    expect(tokens.requests).toHaveLength(1);
  });

  it('refreshes refreshSkewMs before expires_in runs out (real clock: 2 s token, 1 s skew)', async () => {
    tokens.expiresIn = 2;
    const auth = createOutboundAuth(oauth2({ refreshSkewMs: 1000 }), {});
    await call(auth, '/oauth/a');
    await call(auth, '/oauth/b');
    expect(tokens.requests).toHaveLength(1);

    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await call(auth, '/oauth/c')).toEqual({ status: 200, attempts: 1 });
    expect(tokens.requests).toHaveLength(2);
    expect(tokens.issued[1]).not.toBe(tokens.issued[0]);
    expect(seen.map(bearerOf)).toEqual([tokens.issued[0], tokens.issued[0], tokens.issued[1]]);
  });

  it('refreshes at exactly expires_in − refreshSkewMs on an injected clock, single-flight again', async () => {
    let clock = 1_000_000;
    const auth = createOutboundAuth(oauth2(), { now: () => clock });
    await call(auth, '/oauth/a');
    expect(tokens.requests).toHaveLength(1);

    clock += 3_600_000 - 30_000 - 1;
    await call(auth, '/oauth/b');
    expect(tokens.requests).toHaveLength(1);

    clock += 1;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(auth, `/oauth/c${i}`)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(tokens.requests).toHaveLength(2);
    expect(new Set(seen.slice(2).map(bearerOf))).toEqual(new Set([tokens.issued[1]]));
  });

  it('refreshes a token shorter than the skew at half its lifetime; reads expires_in given as a string', async () => {
    let clock = 0;
    tokens.expiresIn = 20; // 20 s, default skew 30 s
    const auth = createOutboundAuth(oauth2(), { now: () => clock });
    await call(auth, '/oauth/a');
    clock = 9_999;
    await call(auth, '/oauth/b');
    expect(tokens.requests).toHaveLength(1);
    clock = 10_000;
    await call(auth, '/oauth/c');
    expect(tokens.requests).toHaveLength(2);

    tokens.expiresIn = '120';
    const stringy = createOutboundAuth(oauth2({ refreshSkewMs: 0 }), { now: () => clock });
    await call(stringy, '/oauth/d');
    clock += 119_999;
    await call(stringy, '/oauth/e');
    expect(tokens.requests).toHaveLength(3);
    clock += 1;
    await call(stringy, '/oauth/f');
    expect(tokens.requests).toHaveLength(4);
  });

  it('keeps a token without expires_in until a 401', async () => {
    tokens.expiresIn = undefined;
    let clock = 0;
    const auth = createOutboundAuth(oauth2(), { now: () => clock });
    await call(auth, '/oauth/a');
    clock += 10 * 365 * 24 * 3_600_000;
    await call(auth, '/oauth/b');
    expect(tokens.requests).toHaveLength(1);

    revoked.add(tokens.issued[0]!);
    expect(await call(auth, '/oauth/c')).toEqual({ status: 200, attempts: 2 });
    expect(tokens.requests).toHaveLength(2);
  });

  it('on a 401 drops the token: unauthorized() is true and the retry carries a fresh token', async () => {
    const auth = createOutboundAuth(oauth2(), {});
    expect(await call(auth, '/oauth/a')).toEqual({ status: 200, attempts: 1 });
    revoked.add(tokens.issued[0]!);

    expect(await call(auth, '/oauth/b')).toEqual({ status: 200, attempts: 2 });
    expect(tokens.requests).toHaveLength(2);
    expect(tokens.issued[1]).not.toBe(tokens.issued[0]);
    expect(seen.map((s) => [s.url, bearerOf(s)])).toEqual([
      ['/oauth/a', tokens.issued[0]],
      ['/oauth/b', tokens.issued[0]],
      ['/oauth/b', tokens.issued[1]],
    ]);

    // After a drop, concurrent callers still share one token request.
    expect(await auth.unauthorized()).toBe(true);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(auth, `/oauth/c${i}`)));
    expect(results.every((r) => r.status === 200 && r.attempts === 1)).toBe(true);
    expect(tokens.requests).toHaveLength(3);
    expect(new Set(seen.slice(3).map(bearerOf))).toEqual(new Set([tokens.issued[2]]));
  });

  it('a token endpoint that is down rejects with TokenEndpointError naming origin+path, then recovers', async () => {
    const port = await closedPort();
    const auth = createOutboundAuth(oauth2({ tokenUrl: `http://127.0.0.1:${port}/token?tenant=acme` }), {});
    const request = { url: new URL('/oauth/a', apiUrl), headers: new Headers() };

    const error = await rejectionOf(auth.apply(request));
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.name).toBe('TokenEndpointError');
    expect(error.message).toBe(`OAuth2 token endpoint http://127.0.0.1:${port}/token is unreachable (ECONNREFUSED)`);
    expect((error as TokenEndpointError).status).toBeUndefined();
    // An outage: worth another attempt, and counted by the breaker.
    expect(error).toMatchObject({ code: 'UPSTREAM_ERROR', transient: true, countsAsFailure: true });
    expect(error.message).not.toContain(CLIENT_SECRET);
    expect(request.headers.has('authorization')).toBe(false);

    // Concurrent callers share the failure; a failure is not cached: each apply() tries again.
    const errors = await Promise.all(Array.from({ length: 10 }, () => rejectionOf(auth.apply(request))));
    expect(new Set(errors.map((e) => e.message))).toEqual(new Set([error.message]));

    const back = await startTokenServer({ [CLIENT_ID]: CLIENT_SECRET }, port);
    try {
      expect(await call(auth, '/oauth/a')).toEqual({ status: 200, attempts: 1 });
      expect(back.requests).toHaveLength(1);
      expect(bearerOf(seen[0])).toBe(back.issued[0]);
    } finally {
      await back.stop();
    }
  });

  it('a non-2xx answer rejects with the status and the OAuth error, no secret; the next apply() retries', async () => {
    const request = () => ({ url: new URL('/oauth/a', apiUrl), headers: new Headers() });
    const wrong = createOutboundAuth(oauth2({ clientSecret: 'not-the-secret' }), {});
    const refused = await rejectionOf(wrong.apply(request()));
    expect(refused).toBeInstanceOf(TokenEndpointError);
    expect(refused).toBeInstanceOf(UpstreamError);
    expect(refused.message).toBe(`OAuth2 token endpoint ${tokens.tokenUrl} answered 401 (invalid_client: client authentication failed)`);
    expect((refused as TokenEndpointError).status).toBe(401);
    expect(refused.message).not.toContain('not-the-secret');
    // RFC 6749 §5.2: the credentials were refused; asking again would be refused again.
    expect(refused).toMatchObject({ code: 'UPSTREAM_ERROR', transient: false, countsAsFailure: false });
    // The status is the token endpoint's: not in extensions, where a client would take it for the API's.
    expect((refused as TokenEndpointError).extensions).toEqual({ code: 'UPSTREAM_ERROR', connector: '' });
    const named = await rejectionOf(createOutboundAuth(oauth2({ clientSecret: 'not-the-secret' }), { connector: 'orders' }).apply(request()));
    expect((named as TokenEndpointError).extensions).toEqual({ code: 'UPSTREAM_ERROR', connector: 'orders' });

    tokens.tamper = (response) => {
      response.statusCode = 503;
      response.body = { error: 'temporarily_unavailable' };
    };
    const auth = createOutboundAuth(oauth2(), {});
    const unavailable = await rejectionOf(auth.apply(request()));
    expect(unavailable.message).toBe(`OAuth2 token endpoint ${tokens.tokenUrl} answered 503 (temporarily_unavailable)`);
    expect((unavailable as TokenEndpointError).status).toBe(503);
    expect(unavailable).toMatchObject({ code: 'UPSTREAM_ERROR', transient: true, countsAsFailure: true });

    tokens.tamper = undefined;
    expect(await call(auth, '/oauth/a')).toEqual({ status: 200, attempts: 1 });
    expect(tokens.requests).toHaveLength(4);
  });

  it('a 200 without an access_token rejects, naming neither the secret nor any token', async () => {
    tokens.tamper = (response) => {
      if (typeof response.body === 'object') delete response.body.access_token;
    };
    const auth = createOutboundAuth(oauth2(), {});
    const error = await rejectionOf(auth.apply({ url: new URL('/oauth/a', apiUrl), headers: new Headers() }));
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect(error.message).toBe(`OAuth2 token endpoint ${tokens.tokenUrl} answered 200 without an access_token`);
    expect((error as TokenEndpointError).status).toBe(200);
    expect(error.message).not.toContain(CLIENT_SECRET);
  });

  it('rejects a body that is not JSON, does not follow a redirect, and scrubs a secret echoed back', async () => {
    let target = 0;
    const elsewhere = await ownServer((_req, res) => {
      target++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"stolen"}');
    });
    const server = await ownServer((req, res) => {
      if (req.url === '/html') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
      else if (req.url === '/moved') res.writeHead(307, { location: `${elsewhere.url}/token` }).end();
      else res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_client', error_description: `secret ${CLIENT_SECRET} is wrong` }));
    });
    try {
      const applyTo = (path: string) =>
        rejectionOf(createOutboundAuth(oauth2({ tokenUrl: `${server.url}${path}` }), {}).apply({ url: new URL(apiUrl), headers: new Headers() }));
      expect((await applyTo('/html')).message).toBe(`OAuth2 token endpoint ${server.url}/html answered 200 without a JSON object`);
      expect((await applyTo('/moved')).message).toBe(`OAuth2 token endpoint ${server.url}/moved answered 307`);
      expect(target).toBe(0);
      const echoed = await applyTo('/echo');
      expect(echoed.message).toBe(`OAuth2 token endpoint ${server.url}/echo answered 400 (invalid_client: secret [REDACTED] is wrong)`);
    } finally {
      await server.close();
      await elsewhere.close();
    }
  });

  it("a caller's signal abandons the wait without cancelling the shared token request", async () => {
    let release: (() => void) | undefined;
    const slow = await ownServer((_req, res) => {
      release = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"slow-token","expires_in":60}');
    });
    try {
      const auth = createOutboundAuth(oauth2({ tokenUrl: `${slow.url}/token` }), {});
      const aborted = new AbortController();
      aborted.abort();
      const early = await rejectionOf(auth.apply({ url: new URL(apiUrl), headers: new Headers() }, aborted.signal));
      expect(early.name).toBe('AbortError');
      expect(slow.hits()).toBe(0);

      const impatient = auth.apply({ url: new URL(apiUrl), headers: new Headers() }, AbortSignal.timeout(100));
      const patientRequest = { url: new URL(apiUrl), headers: new Headers() };
      const patient = auth.apply(patientRequest);
      expect((await rejectionOf(impatient)).name).toBe('TimeoutError');
      await expect.poll(() => release !== undefined).toBe(true);
      release?.();
      await patient;
      expect(patientRequest.headers.get('authorization')).toBe('Bearer slow-token');
      expect(slow.hits()).toBe(1);
    } finally {
      await slow.close();
    }
  });
});

// ---- through a connector's pipeline -------------------------------------------------------------

describe('token endpoint failures through an http connector', () => {
  const SDL = `
    type Order { ok: Boolean }
    type Query {
      refused(id: ID!): Order @http(connector: "refused", path: "/oauth/orders/{args.id}")
      flaky(id: ID!): Order @http(connector: "flaky", path: "/oauth/orders/{args.id}")
    }
  `;
  const WRONG_SECRET = 'wrong-secret-6a1f0c';
  /** Retried twice on a transient error; the breaker opens once 3 calls were made and half failed. */
  const pipeline = { retry: { attempts: 2, baseDelayMs: 10 }, breaker: { volumeThreshold: 3, resetTimeoutMs: 60_000 } };

  async function hub() {
    const oauth = { type: 'oauth2', tokenUrl: tokens.tokenUrl, clientId: CLIENT_ID };
    return startHub(
      { 'schema/orders.graphql': SDL },
      {
        connectors: {
          refused: { type: 'http', baseUrl: apiUrl, auth: { ...oauth, clientSecret: WRONG_SECRET }, ...pipeline },
          flaky: { type: 'http', baseUrl: apiUrl, auth: { ...oauth, clientSecret: CLIENT_SECRET }, ...pipeline },
        },
      },
    );
  }

  const statusOf = async (url: string, name: string) =>
    (await gql(url, `{ hub { connector(name: "${name}") { requests failures lastError breaker { state } } } }`)).body.data;

  it('invalid_client (401) is an UPSTREAM_ERROR of the connector: not retried, never opening the breaker, no secret shown', async () => {
    const h = await hub();
    try {
      // More calls than volumeThreshold, each refused.
      for (let i = 1; i <= 5; i++) {
        const r = await gql(h.url, '{ refused(id: "1") { ok } }');
        expect(r.body).toEqual({
          data: { refused: null },
          errors: [
            {
              // The token URL sits under `auth`: a secret (SPEC §3), redacted.
              message: 'OAuth2 token endpoint [REDACTED] answered 401 (invalid_client: client authentication failed)',
              locations: [{ line: 1, column: 3 }],
              path: ['refused'],
              extensions: { code: 'UPSTREAM_ERROR', connector: 'refused' },
            },
          ],
        });
        // One token request per call: no retry.
        expect(tokens.requests).toHaveLength(i);
      }
      expect(seen).toHaveLength(0);
      expect(await statusOf(h.url, 'refused')).toEqual({
        hub: { connector: { requests: 5, failures: 0, lastError: null, breaker: { state: 'CLOSED' } } },
      });
      expect(h.rawLogs()).not.toContain(WRONG_SECRET);
    } finally {
      await h.stop();
    }
  });

  it('a token endpoint answering 503 is transient and counted: retried, then the breaker opens', async () => {
    tokens.tamper = (response) => {
      response.statusCode = 503;
      response.body = { error: 'temporarily_unavailable' };
    };
    const h = await hub();
    try {
      for (let i = 1; i <= 3; i++) {
        const r = await gql(h.url, '{ flaky(id: "1") { ok } }');
        expect(r.body.errors).toEqual([
          {
            message: 'OAuth2 token endpoint [REDACTED] answered 503 (temporarily_unavailable)',
            locations: [{ line: 1, column: 3 }],
            path: ['flaky'],
            extensions: { code: 'UPSTREAM_ERROR', connector: 'flaky' },
          },
        ]);
        // The first attempt and two retries.
        expect(tokens.requests).toHaveLength(3 * i);
      }
      const open = await gql(h.url, '{ flaky(id: "1") { ok } }');
      expect(open.body.errors?.[0]?.extensions).toEqual({ code: 'CIRCUIT_OPEN', connector: 'flaky' });
      expect(tokens.requests).toHaveLength(9);
      expect(await statusOf(h.url, 'flaky')).toEqual({
        hub: {
          connector: {
            requests: 4,
            failures: 4,
            lastError: 'OAuth2 token endpoint [REDACTED] answered 503 (temporarily_unavailable)',
            breaker: { state: 'OPEN' },
          },
        },
      });
      expect(seen).toHaveLength(0);
    } finally {
      await h.stop();
    }
  });
});
