// A TCP proxy on 127.0.0.1 in front of a real broker, for tests that cut the connection: `cut()`
// destroys every proxied connection and refuses new ones until `restore()`; `freeze()` silently
// drops what clients send (an acknowledgement never reaches the broker) while the broker's bytes
// still reach them.
import net from 'node:net';

export interface TcpProxy {
  /** The proxy's port: give clients `127.0.0.1:<port>` instead of the broker's. */
  readonly port: number;
  /** Destroys every open connection (both sides) and refuses new ones. */
  cut(): Promise<void>;
  /** Accepts connections again, on the same port, and forwards what clients send again. */
  restore(): Promise<void>;
  /** Drops every byte clients send from now on (the broker hears nothing more); the broker's bytes still arrive. */
  freeze(): void;
  /** Connections currently proxied. */
  readonly open: number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let accepting = true;
  let frozen = false;
  const server = net.createServer((client) => {
    if (!accepting) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (chunk) => {
      if (!frozen) upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get open() {
      return sockets.size / 2;
    },
    async cut() {
      accepting = false;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    async restore() {
      accepting = true;
      frozen = false;
    },
    freeze() {
      frozen = true;
    },
    async close() {
      accepting = false;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
