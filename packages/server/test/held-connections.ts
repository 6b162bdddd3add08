import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface HoldingProxy {
  /** The database URL, through the proxy. */
  url: string;
  /** How many connections it holds back. */
  held(): number;
  /** Closes the proxy and every connection through it. */
  close(): Promise<void>;
}

/**
 * A TCP proxy to the server of `databaseUrl` that never answers a connection whose startup message names
 * `applicationName`: to its client it stays a connection being opened, as one does while PostgreSQL is slow to
 * answer. Every other connection passes through.
 */
export async function holdConnectionsNamed(databaseUrl: string, applicationName: string): Promise<HoldingProxy> {
  const target = new URL(databaseUrl);
  const marker = Buffer.from(`application_name\0${applicationName}\0`);
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  let held = 0;
  const server = createServer((client) => {
    track(client);
    let received = Buffer.alloc(0);
    const onStartup = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      // The startup message begins with its length.
      if (received.length < 4 || received.length < received.readUInt32BE(0)) return;
      client.off('data', onStartup);
      if (received.includes(marker)) {
        held++;
        return;
      }
      const upstream = connect(Number(target.port), target.hostname);
      track(upstream);
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.write(received);
      client.pipe(upstream).pipe(client);
    };
    client.on('data', onStartup);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    held: () => held,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
