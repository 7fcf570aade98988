import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { QUERIES } from './workload.ts';

/**
 * The "plain Node http floor" of `npm run bench`: a bare `node:http` server that reads each
 * request's body and answers Q3's exact JSON (`{"data":{"greet":"Hello World!"}}`) without
 * parsing or executing anything. No Node GraphQL server can answer Q3 faster on this machine, so
 * the hub's Q3 ÷ this is the share of the runtime's ceiling it reaches.
 *
 *   tsx bench/node-floor.ts --port 0
 *
 * Prints `node floor on <url>` once it listens.
 */
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const body = Buffer.from(JSON.stringify(QUERIES.find((q) => q.name === 'Q3')!.expected));
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };

const server = createServer((req, res) => {
  // The request body is read (and dropped) like a GraphQL server reads it, then the answer sent.
  req.resume();
  req.once('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.listen(Number(values.port), values.host, () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`node floor on http://${values.host}:${port}/graphql\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
