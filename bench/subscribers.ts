import { parseArgs } from 'node:util';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * The client side of the connection test of `npm run bench`, run as its own process (one file
 * descriptor per connection): opens `--count` graphql-ws connections to `--url`, each holding one
 * `messagePosted` subscription, then reports over IPC. Messages from the parent:
 * `{type: 'close'}` ends everything. Messages to the parent:
 * `{type: 'open', connected, failed, ms}` once every connection is acknowledged (or failed),
 * `{type: 'delivered', received, ms}` when every subscription got the broadcast (ms after the
 * parent's `{type: 'expect'}`), or on `{type: 'report'}` with what arrived so far.
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    count: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '200' },
  },
});
if (!values.url || !process.send) throw new Error('run by bench/run.ts: --url and an IPC channel are required');
const send = (message: object) => process.send!(message);

const count = Number(values.count);
const concurrency = Number(values.concurrency);
const clients: Client[] = [];
let connected = 0;
let failed = 0;
let received = 0;
let expectedAt: number | undefined;

function open(): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      if (ok) connected++;
      else failed++;
      resolve();
    };
    const client = createClient({
      url: values.url!,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      on: { connected: () => settle(true), closed: () => settle(false), error: () => settle(false) },
    });
    clients.push(client);
    client.subscribe(
      { query: 'subscription { messagePosted { id text } }' },
      {
        next: () => {
          received++;
          if (expectedAt !== undefined && received === connected) send({ type: 'delivered', received, ms: performance.now() - expectedAt });
        },
        error: () => settle(false),
        complete: () => undefined,
      },
    );
  });
}

const started = performance.now();
for (let i = 0; i < count; i += concurrency) {
  await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, open));
}
send({ type: 'open', connected, failed, ms: performance.now() - started });

process.on('message', (message: { type: string }) => {
  if (message.type === 'expect') {
    received = 0;
    expectedAt = performance.now();
  } else if (message.type === 'report') {
    send({ type: 'delivered', received, ms: expectedAt === undefined ? 0 : performance.now() - expectedAt });
  } else if (message.type === 'close') {
    void Promise.allSettled(clients.map((c) => c.dispose())).then(() => process.exit(0));
  }
});
