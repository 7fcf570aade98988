import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * A small, fast REST upstream over jsonplaceholder's data (demo/data): GET /posts,
 * /posts/:id, /users, /users/:id, /users?id=1&id=2…, /comments?postId=N. Bodies are serialised
 * once (a query's body on its first request), so the upstream is never what a benchmark
 * measures. `npm start` runs it in-process for the demo's `jsonplaceholder` connector
 * (demo/start.ts); `npm run demo-api` runs it alone; the benchmarks and tests use it too.
 *
 * `GET /__count` answers `{"requests": N}`, the requests answered so far (itself not counted):
 * the benchmark reads it around a run to count upstream calls per GraphQL request.
 */
interface Data {
  posts: { id: number; userId: number }[];
  users: { id: number }[];
  comments: { id: number; postId: number }[];
}

export interface JsonPlaceholder {
  url: string;
  /** Requests answered so far. */
  requests: () => number;
  /** Lets the process exit while the server still listens (its connections too). */
  unref: () => void;
  close: () => Promise<void>;
}

/** Bodies built from a query string, kept once built (the set the bench asks for is small). */
const MAX_QUERY_BODIES = 10_000;

/**
 * The data file, found from the package root: this module runs as demo/jsonplaceholder.ts
 * (tsx, vitest) and compiled as dist/demo/jsonplaceholder.js (`npm start`), and the JSON is not
 * copied to dist/.
 */
export const DATA_FILE = path.join(path.dirname(createRequire(import.meta.url).resolve('junction/package.json')), 'demo/data/jsonplaceholder.json');

export async function startJsonPlaceholder(port = 0, host = '127.0.0.1'): Promise<JsonPlaceholder> {
  const data = JSON.parse(readFileSync(DATA_FILE, 'utf8')) as Data;
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const bodies = new Map<string, Buffer>([
    ['/posts', json(data.posts)],
    ['/users', json(data.users)],
    ...data.posts.map((p) => [`/posts/${p.id}`, json(p)] as [string, Buffer]),
    ...data.users.map((u) => [`/users/${u.id}`, json(u)] as [string, Buffer]),
  ]);
  const fromQuery = (path: string): Buffer | undefined => {
    const url = new URL(path, 'http://upstream');
    if (url.search === '') return undefined;
    if (url.pathname === '/users') {
      const ids = new Set(url.searchParams.getAll('id').map(Number));
      return json(data.users.filter((u) => ids.has(u.id)));
    }
    if (url.pathname === '/comments') {
      const postId = Number(url.searchParams.get('postId'));
      return json(data.comments.filter((c) => c.postId === postId));
    }
    return undefined;
  };
  let count = 0;
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path === '/__count') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requests: count }));
      return;
    }
    count++;
    let body = bodies.get(path);
    if (body === undefined && req.method === 'GET') {
      body = fromQuery(path);
      if (body !== undefined && bodies.size < MAX_QUERY_BODIES) bodies.set(path, body);
    }
    if (req.method !== 'GET' || body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  });
  server.keepAliveTimeout = 60_000;
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    requests: () => count,
    unref: () => {
      server.unref();
      for (const socket of sockets) socket.unref();
      server.on('connection', (socket) => socket.unref());
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '4001' }, host: { type: 'string', default: '127.0.0.1' } } });
  const upstream = await startJsonPlaceholder(Number(values.port), values.host);
  process.stdout.write(`jsonplaceholder upstream on ${upstream.url} (Ctrl-C stops it)\n`);
}
