import { AdvisoryLockClass, explainConnectFailure, SqlState, sqlStateOf } from '@walflow/core';
import pg, { type ClientConfig } from 'pg';
import type { Logger } from 'pino';

/** How long releasing the lock waits for the server to answer before it closes the connection itself. */
const RELEASE_WAIT_MS = 5_000;
/** How often the holder shows the server it is there, unless told otherwise. */
const DEFAULT_LOCK_CHECK_MS = 30_000;
/**
 * The holder gives its lock up after three check intervals without an answer, and never sooner than this: a pause
 * of its event loop (a long garbage collection on a busy machine) must not cost the lock.
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
 * `checkMs` and gives the lock up once its checks have gone unanswered for three such intervals, or 5 s if
 * longer; the server ends the lock's session, freeing the lock for a standby, two intervals after that
 * (`idle_session_timeout`, counted from the last check it received). The holder, which notices its silence at its
 * next check at the latest, so steps down before a standby can take over.
 */
export class LeaderLock {
  constructor(
    private readonly connection: ClientConfig,
    private readonly slotName: string,
    private readonly logger: Logger,
    private readonly checkMs: number = DEFAULT_LOCK_CHECK_MS,
  ) {}

  /** How long the holder goes without an answer to its checks before it gives the lock up. */
  private get silenceLimitMs(): number {
    return Math.max(3 * this.checkMs, SHORTEST_SILENCE_MS);
  }

  /** How long the server lets the lock's session go without a check before it ends it: later than the holder. */
  private get serverSilenceLimitMs(): number {
    return this.silenceLimitMs + 2 * this.checkMs;
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
      // Named with their schema and typed: this connection keeps the role's search path, and a function in `public`
      // matching an untyped argument better would otherwise take the call, with walflow's privileges.
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_catalog.pg_try_advisory_lock($1::integer, pg_catalog.hashtext($2::text)) AS locked',
        [AdvisoryLockClass.leader, this.slotName],
      );
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
      checks.stop();
      this.logger.warn({ slot: this.slotName, silentMs: this.silenceLimitMs }, 'leader lock connection silent: giving the lock up');
      destroySocket(client);
    });
    void lost.then(() => checks.stop());
    return {
      lost,
      release: async () => {
        checks.stop();
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
      await client.query(`SET idle_session_timeout = ${this.serverSilenceLimitMs}`);
    } catch (error) {
      if (sqlStateOf(error) !== SqlState.undefinedObject) throw error;
      this.logger.warn({ slot: this.slotName }, 'PostgreSQL before 14 cannot end a silent leader lock session: a standby waits for the server to notice a lost leader');
    }
  }

  /**
   * Sends a check every interval; calls `silent` once no check has been answered for the allowed silence, by the
   * monotonic clock (a step of the wall clock must not cost a healthy lock), unless stopped first.
   */
  private checkEvery(client: pg.Client, silent: () => void): { stop(): void } {
    let answeredAt = performance.now();
    let checking = false;
    let stopped = false;
    const isSilent = (): boolean => !stopped && performance.now() - answeredAt >= this.silenceLimitMs;
    const timer = setInterval(() => {
      // Timers run before pending reads: an answer that came while the event loop was held up is read first.
      if (isSilent()) return void setImmediate(() => isSilent() && silent());
      if (checking) return;
      checking = true;
      // A failed check is the connection's failure, which its 'error' event reports.
      client.query('SELECT 1').then(
        () => {
          answeredAt = performance.now();
          checking = false;
        },
        () => undefined,
      );
    }, this.checkMs);
    // The lock's connection keeps the process alive while it is held; the timer need not.
    timer.unref();
    return {
      stop: () => {
        stopped = true;
        clearInterval(timer);
      },
    };
  }
}

/** Closes the connection's socket without a goodbye, which a dropped network would never carry. */
function destroySocket(client: pg.Client): void {
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}
