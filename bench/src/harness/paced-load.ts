import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export interface PacedLoadOptions {
  url: string;
  ratePerSecond: number;
  seconds: number;
  /** Concurrent connections; enough that commits waiting for fsync do not cap the rate. */
  connections: number;
  /** The statement that commits event number `n` (one autocommitted statement: one transaction). */
  statement(n: number): { text: string; values: unknown[] };
}

export interface PacedLoadResult {
  events: number;
  seconds: number;
  /** Events committed per second; below the asked rate when the machine could not keep up. */
  rate: number;
}

/**
 * Commits events at a steady rate: event n is due at n / rate seconds, and the next free connection sends it.
 * A connection that falls behind catches up at once, so the rate holds while the server keeps up.
 */
export async function runPacedLoad(options: PacedLoadOptions): Promise<PacedLoadResult> {
  const clients = await Promise.all(
    Array.from({ length: options.connections }, async () => {
      const client = new pg.Client({ connectionString: options.url, application_name: 'walflow-bench-load' });
      await client.connect();
      return client;
    }),
  );
  const total = Math.round(options.ratePerSecond * options.seconds);
  let issued = 0;
  const started = performance.now();
  const worker = async (client: pg.Client): Promise<void> => {
    while (issued < total) {
      const dueAt = (issued / options.ratePerSecond) * 1000;
      const wait = dueAt - (performance.now() - started);
      if (wait > 1) {
        await sleep(wait);
        continue;
      }
      const n = issued++;
      const { text, values } = options.statement(n);
      await client.query(text, values);
    }
  };
  try {
    await Promise.all(clients.map(worker));
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
  const seconds = (performance.now() - started) / 1000;
  return { events: total, seconds, rate: total / seconds };
}
