import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

/**
 * A small, fast REST upstream over jsonplaceholder's data (bench/data): GET /posts,
 * /posts/:id, /users, /users/:id, /users?id=1&id=2…, /comments?postId=N. Bodies are serialised
 * once at start, so the upstream is never what a benchmark measures. `npm run demo-api` runs it
 * for the demo's `jsonplaceholder` connector.
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
  close: () => Promise<void>;
}

export async function startJsonPlaceholder(port = 0, host = '127.0.0.1'): Promise<JsonPlaceholder> {
  const data = JSON.parse(readFileSync(new URL('./data/jsonplaceholder.json', import.meta.url), 'utf8')) as Data;
  const fixed = new Map<string, string>([
    ['/posts', JSON.stringify(data.posts)],
    ['/users', JSON.stringify(data.users)],
    ...data.posts.map((p) => [`/posts/${p.id}`, JSON.stringify(p)] as [string, string]),
    ...data.users.map((u) => [`/users/${u.id}`, JSON.stringify(u)] as [string, string]),
  ]);
  let count = 0;
  const server: Server = createServer((req, res) => {
    count++;
    const url = new URL(req.url ?? '/', 'http://upstream');
    let body: string | undefined;
    if (url.search === '') body = fixed.get(url.pathname);
    else if (url.pathname === '/users') {
      const ids = new Set(url.searchParams.getAll('id').map(Number));
      body = JSON.stringify(data.users.filter((u) => ids.has(u.id)));
    } else if (url.pathname === '/comments') {
      const postId = Number(url.searchParams.get('postId'));
      body = JSON.stringify(data.comments.filter((c) => c.postId === postId));
    }
    if (req.method !== 'GET' || body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    requests: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '4001' }, host: { type: 'string', default: '127.0.0.1' } } });
  const upstream = await startJsonPlaceholder(Number(values.port), values.host);
  process.stdout.write(`jsonplaceholder upstream on ${upstream.url} (Ctrl-C stops it)\n`);
}
