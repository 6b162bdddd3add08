import { explainConnectFailure } from '@walflow/core';
import pg, { type ClientConfig } from 'pg';
import type { Logger } from 'pino';

/** Advisory lock namespace for walflow's leader election ("wf" in ASCII); the slot name picks the lock. */
const LOCK_CLASS = 0x7766;
/** How long releasing the lock waits for the server to answer before it closes the connection itself. */
const RELEASE_WAIT_MS = 5_000;

export interface LeaderHandle {
  /** Resolves when the lock is lost (its connection died): the holder must stop consuming at once. */
  lost: Promise<void>;
  release(): Promise<void>;
}

/**
 * One consumer per slot: the leader holds a session advisory lock on a connection of its own, taken before
 * START_REPLICATION. Standbys poll for it; when the leader dies its connection closes, PostgreSQL releases
 * the lock, and a standby takes over.
 */
export class LeaderLock {
  constructor(
    private readonly connection: ClientConfig,
    private readonly slotName: string,
    private readonly logger: Logger,
  ) {}

  /** Tries once; returns the handle, or null when another process leads. */
  async tryAcquire(): Promise<LeaderHandle | null> {
    const client = new pg.Client({ ...this.connection, application_name: 'walflow-leader-lock' });
    let lose!: () => void;
    const lost = new Promise<void>((resolve) => (lose = resolve));
    client.on('error', (error) => {
      this.logger.warn({ err: error, slot: this.slotName }, 'leader lock connection failed');
      lose();
    });
    client.on('end', () => lose());
    try {
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [LOCK_CLASS, this.slotName]);
      if (rows[0]?.locked !== true) {
        await client.end();
        return null;
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      throw explainConnectFailure(error, this.connection.connectionTimeoutMillis);
    }
    return {
      lost,
      release: async () => {
        client.removeAllListeners('end');
        // A goodbye on a connection the network dropped is never answered: past a while, the socket is closed.
        const ended = client.end().catch(() => undefined);
        const timer = setTimeout(() => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy(), RELEASE_WAIT_MS);
        await ended;
        clearTimeout(timer);
      },
    };
  }
}
