// `npm start` (compiled to dist/demo/start.js): the demo hub, with nothing from the network.
//
// The demo's REST connector (`jsonplaceholder`, schema/jsonplaceholder.graphql) reads its
// baseUrl from DEMO_API_URL. Unless that variable is set, this script first serves the same
// data locally, in this process, on an ephemeral port of 127.0.0.1 (demo/jsonplaceholder.ts over
// demo/data/jsonplaceholder.json), points DEMO_API_URL at it, and then runs the real CLI here as
// `junction serve` with the arguments given (`npm start -- --port 5000`). To use another API,
// the public one included: DEMO_API_URL=https://jsonplaceholder.typicode.com npm start
import { startJsonPlaceholder } from './jsonplaceholder.ts';

if (!process.env.DEMO_API_URL) {
  const api = await startJsonPlaceholder(0, '127.0.0.1');
  // The hub decides when the process ends: once it has drained (SIGTERM, Ctrl-C), nothing of
  // the local API keeps the event loop alive.
  api.unref();
  process.env.DEMO_API_URL = api.url;
  // A line in the hub's own format (pino JSON on stdout), before the hub's first one.
  process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), service: 'junction-demo', url: api.url, msg: `demo REST API (jsonplaceholder data) on ${api.url}` })}\n`);
}

process.argv = [process.argv[0] ?? process.execPath, 'junction', 'serve', ...process.argv.slice(2)];
await import('../src/cli.ts');
