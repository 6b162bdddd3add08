import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface HoldingProxy {
  /** The database URL, through the proxy. */
  url: string;
  /** How many connections it holds back. */
  held(): number;
  /** Lets the connections held back, and those to come, through. */
  release(): void;
  /** Closes the proxy and every connection through it. */
  close(): Promise<void>;
}

/**
 * A TCP proxy to the server of `databaseUrl` that never answers a connection whose startup message names
 * `applicationName` until release(): to its client it stays a connection being opened, as one does while
 * PostgreSQL is slow to answer. Every other connection passes through.
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
  const heldBack: Array<() => void> = [];
  let holding = true;
  /** Forwards a client whose startup message has arrived: the message, then everything both ways. */
  const passThrough = (client: Socket, startup: Buffer): void => {
    const upstream = connect(Number(target.port), target.hostname);
    track(upstream);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.write(startup);
    client.pipe(upstream).pipe(client);
  };
  const server = createServer((client) => {
    track(client);
    let received = Buffer.alloc(0);
    const onStartup = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      // The startup message begins with its length.
      if (received.length < 4 || received.length < received.readUInt32BE(0)) return;
      client.off('data', onStartup);
      if (holding && received.includes(marker)) heldBack.push(() => passThrough(client, received));
      else passThrough(client, received);
    };
    client.on('data', onStartup);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    held: () => heldBack.length,
    release: () => {
      holding = false;
      for (const forward of heldBack.splice(0)) forward();
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
