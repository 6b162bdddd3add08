import { AdvisoryLockClass, explainConnectFailure, SqlState, sqlStateOf } from '@walflow/core';
import pg, { type ClientConfig } from 'pg';
import type { Logger } from 'pino';

/** How long releasing the lock waits for the server to answer before it closes the connection itself. */
const RELEASE_WAIT_MS = 5_000;
/** How often the holder shows the server it is there, unless told otherwise. */
const DEFAULT_LOCK_CHECK_MS = 30_000;
/**
 * The lock's session ends after three check intervals in which nothing arrived on it, and never sooner than
 * this: a pause of the holder's event loop (a long garbage collection on a busy machine) must not cost the lock.
 */
const SHORTEST_SILENCE_MS = 5_000;

export interface LeaderHandle {
  /** Resolves when the lock is lost (its connection died): the holder must stop consuming at once. */
  lost: Promise<void>;
  release(): Promise<void>;
}

/**
 * One consumer per slot: the leader holds a session advisory lock on a connection of its own, taken before
 * START_REPLICATION. Standbys poll for it; when the leader dies its connection closes, PostgreSQL releases
 * the lock, and a standby takes over.
 *
 * A leader cut off by the network closes nothing, and the server would hold its lock until its TCP keepalive
 * gives up (hours by default; never through a proxy that answers for it). So the holder checks its lock every
 * `checkMs`, and the server ends the lock's session once nothing has arrived on it for three such intervals, or
 * 5 s if longer (`idle_session_timeout`), which frees the lock for a standby; the holder gives the lock up
 * itself when it has heard no answer to its checks for as long.
 */
export class LeaderLock {
  constructor(
    private readonly connection: ClientConfig,
    private readonly slotName: string,
    private readonly logger: Logger,
    private readonly checkMs: number = DEFAULT_LOCK_CHECK_MS,
  ) {}

  /** How long the lock's connection may stay silent before the server, and the holder, give the lock up. */
  private get silenceLimitMs(): number {
    return Math.max(3 * this.checkMs, SHORTEST_SILENCE_MS);
  }

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
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [AdvisoryLockClass.leader, this.slotName]);
      if (rows[0]?.locked !== true) {
        await client.end();
        return null;
      }
      await this.endSessionWhenSilent(client);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw explainConnectFailure(error, this.connection.connectionTimeoutMillis);
    }
    const checks = this.checkEvery(client, () => {
      clearInterval(checks);
      this.logger.warn({ slot: this.slotName, silentMs: this.silenceLimitMs }, 'leader lock connection silent: giving the lock up');
      destroySocket(client);
    });
    checks.unref();
    void lost.then(() => clearInterval(checks));
    return {
      lost,
      release: async () => {
        clearInterval(checks);
        client.removeAllListeners('end');
        // A goodbye on a connection the network dropped is never answered: past a while, the socket is closed.
        const ended = client.end().catch(() => undefined);
        const timer = setTimeout(() => destroySocket(client), RELEASE_WAIT_MS);
        await ended;
        clearTimeout(timer);
      },
    };
  }

  /** Has the server end the lock's session, freeing the lock, once the holder has gone silent. */
  private async endSessionWhenSilent(client: pg.Client): Promise<void> {
    try {
      await client.query(`SET idle_session_timeout = ${this.silenceLimitMs}`);
    } catch (error) {
      if (sqlStateOf(error) !== SqlState.undefinedObject) throw error;
      this.logger.warn({ slot: this.slotName }, 'PostgreSQL before 14 cannot end a silent leader lock session: a standby waits for the server to notice a lost leader');
    }
  }

  /** Sends a check every interval; calls `silent` once no check has been answered for the allowed silence. */
  private checkEvery(client: pg.Client, silent: () => void): NodeJS.Timeout {
    let answeredAt = Date.now();
    let checking = false;
    return setInterval(() => {
      // Timers run before pending reads: an answer that came while the event loop was held up is read first.
      if (Date.now() - answeredAt >= this.silenceLimitMs) return void setImmediate(() => Date.now() - answeredAt >= this.silenceLimitMs && silent());
      if (checking) return;
      checking = true;
      // A failed check is the connection's failure, which its 'error' event reports.
      client.query('SELECT 1').then(
        () => {
          answeredAt = Date.now();
          checking = false;
        },
        () => undefined,
      );
    }, this.checkMs);
  }
}

/** Closes the connection's socket without a goodbye, which a dropped network would never carry. */
function destroySocket(client: pg.Client): void {
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}
