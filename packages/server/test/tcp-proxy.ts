import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** A TCP proxy to the database, and what a test can do to the network between: cut it, or let it go silent. */
export interface TcpProxy {
  /** DATABASE_URL through the proxy. */
  url: string;
  /** Drops every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  /** The open connections go silent both ways, as on a dropped network, without closing; new ones pass. */
  silence(): void;
  /** As silence(), and new connections are refused until restore(): the network between is gone. */
  partition(): void;
  /** Stops listening and closes every connection, silent ones too. */
  close(): Promise<void>;
}

export async function startProxy(databaseUrl: string): Promise<TcpProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) sockets.add(socket.on('error', close).on('close', close));
    client.pipe(upstream).pipe(client);
  });
  const silence = (): void => {
    for (const socket of sockets) {
      socket.unpipe();
      socket.pause();
    }
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    cut: () => {
      refusing = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore: () => (refusing = false),
    silence,
    partition: () => {
      refusing = true;
      silence();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
