import { backoffDelay, isWalflowError, WakeableSleep, WalflowError, type BackoffOptions, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { LeaderLock, type LeaderHandle } from './leader-lock.js';
import { explainSlotError } from './slot.js';
import { StreamSession, type StreamSessionOptions } from './stream-session.js';
import { verifyConsumer } from './verify-consumer.js';
import { MESSAGE_PREFIX } from './outbox-stream.js';

export type ConsumerState = 'starting' | 'standby' | 'streaming' | 'reconnecting' | 'down' | 'stopped';
export type ConsumerRole = 'leader' | 'standby';

export interface ConsumerStatus {
  state: ConsumerState;
  role: ConsumerRole;
  /** Why the consumer is not streaming, and for `down` what an operator must do. */
  reason?: string;
  since: Date;
}

export interface ReplicationConsumerOptions extends Omit<StreamSessionOptions, 'onStreaming' | 'decoder'> {
  /** A normal (non-replication) connection for checks and heartbeats. */
  db: Kysely<WalflowDatabase>;
  /** Reconnect delays. @default { initialMs: 500, maxMs: 30000 } */
  reconnect?: BackoffOptions;
  /** How often a standby tries to become the leader. @default 1000 */
  standbyPollMs?: number;
  /** How often a consumer that is down checks again whether it can go on (after a repair). @default 10000 */
  downRecheckMs?: number;
  /**
   * How often the leader writes a heartbeat into the WAL, so an idle slot on a busy server moves, and checks
   * its lock's connection (LeaderLock: three checks unanswered, at least 5 s, and it steps down). @default 30000
   */
  heartbeatMs?: number;
}

const DEFAULT_HEARTBEAT_MS = 30_000;
/** A session that streamed this long counts as one that worked: the next failure's backoff starts over. */
const STREAMED_A_WHILE_MS = 10_000;

/**
 * How long a healthy stream can be silent: the server asks for a reply every half of its wal_sender_timeout (and
 * the heartbeat arrives every heartbeatMs), so twice the timeout, or three heartbeats if longer. A server with
 * the timeout off sends no keepalives, and a heartbeat may wait behind a transaction being decoded for minutes:
 * no limit then.
 */
async function silenceLimitOf(db: Kysely<WalflowDatabase>, heartbeatMs: number): Promise<number | undefined> {
  const { rows } = await sql<{ ms: string }>`SELECT setting AS ms FROM pg_settings WHERE name = 'wal_sender_timeout'`.execute(db);
  const timeoutMs = Number(rows[0]?.ms ?? 0);
  return timeoutMs > 0 ? Math.max(2 * timeoutMs, 3 * heartbeatMs) : undefined;
}

/** The server process streaming the slot now, if any. */
async function slotHolder(db: Kysely<WalflowDatabase>, slotName: string): Promise<number | null> {
  const { rows } = await sql<{ pid: number | null }>`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(db);
  return rows[0]?.pid ?? null;
}

/**
 * Errors no reconnect can fix: the consumer reports them and checks again later instead of retrying hard
 * (`config_invalid`: the slot of that name is another database's).
 */
const PERMANENT = ['slot_missing', 'slot_plugin_not_allowed', 'wal_level_not_logical', 'wrong_server', 'config_invalid'] as const;

/**
 * Keeps one replication session running on the leader: leadership first (an advisory lock taken before
 * START_REPLICATION; standbys wait for it), then sessions — a new replication connection for every attempt,
 * with capped exponential backoff and jitter between them. A stop drains the current session first.
 */
export class ReplicationConsumer {
  private current: ConsumerStatus = { state: 'stopped', role: 'standby', since: new Date() };
  private session: StreamSession | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private readonly pause = new WakeableSleep();
  private readonly lock: LeaderLock;

  constructor(private readonly options: ReplicationConsumerOptions) {
    this.lock = new LeaderLock(options.connection, options.slotName, options.logger, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  }

  private get downRecheckMs(): number {
    return this.options.downRecheckMs ?? 10_000;
  }

  get status(): ConsumerStatus {
    return this.current;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.wake();
    await this.session?.stop();
    await this.loop;
    this.loop = null;
  }

  private async run(): Promise<void> {
    this.setState('starting', 'standby');
    await this.reportOutboxOlderThanSlot();
    while (!this.stopping) {
      if (this.current.state === 'down') await this.pause.sleep(this.downRecheckMs);
      const leader = await this.becomeLeader();
      if (!leader) break;
      try {
        await this.lead(leader);
      } finally {
        await leader.release();
      }
    }
    this.setState('stopped', 'standby');
  }

  private async becomeLeader(): Promise<LeaderHandle | null> {
    const { logger, slotName } = this.options;
    let announced = false;
    let refusedSince: number | undefined;
    while (!this.stopping) {
      try {
        const handle = await this.lock.tryAcquire();
        if (handle) {
          logger.info({ slot: slotName }, 'leading: this process consumes the slot');
          return handle;
        }
        if (!announced) logger.info({ slot: slotName }, 'standby: another walflow process consumes the slot');
        announced = true;
        refusedSince ??= performance.now();
        // A process that is down stays down while the lock is held only now and then: by another down process,
        // for its own recheck. Held longer than a recheck takes, the lock has a leader, and this is its standby.
        const heldByALeader = performance.now() - refusedSince >= this.downRecheckMs;
        if (this.current.state !== 'down' || heldByALeader) this.setState('standby', 'standby');
      } catch (error) {
        refusedSince = undefined;
        logger.warn({ err: error, slot: slotName }, 'could not reach PostgreSQL for the leader lock');
      }
      await this.pause.sleep(this.options.standbyPollMs ?? 1000);
    }
    return null;
  }

  /** Streams while this process leads: until a stop, the loss of the lock, or a failure no retry can fix. */
  private async lead(leader: LeaderHandle): Promise<void> {
    const { logger, slotName } = this.options;
    let lockLost = false;
    void leader.lost.then(() => {
      if (this.stopping) return;
      lockLost = true;
      logger.error({ slot: slotName }, 'leader lock lost: stopping the stream');
      this.setState('standby', 'standby', 'the leader lock was lost');
      this.pause.wake();
      void this.session?.stop();
    });
    const heartbeat = setInterval(() => void this.heartbeat(), this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    heartbeat.unref();
    let attempt = 0;
    let streamingSince: number | undefined;
    try {
      while (!this.stopping && !lockLost) {
        try {
          const { decoder, confirmedFlush } = await verifyConsumer(this.options.db, slotName);
          const silenceLimitMs = this.options.silenceLimitMs ?? (await silenceLimitOf(this.options.db, this.options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS));
          // A stop or the loss of the lock while the checks ran found no session to stop: start none. (Nothing may
          // be awaited between this check and the session's creation.)
          if (this.stopping || lockLost) break;
          this.session = new StreamSession({
            ...this.options,
            decoder,
            confirmedFlush,
            silenceLimitMs,
            slotHolder: () => slotHolder(this.options.db, slotName),
            onStreaming: () => {
              // A stream that starts as the lock is lost is being stopped: this process is no longer the leader.
              if (lockLost) return;
              streamingSince = performance.now();
              this.setState('streaming', 'leader');
              logger.info({ slot: slotName }, 'replication streaming');
            },
          });
          await this.session.run();
          if (!this.stopping && !lockLost) throw new WalflowError('replication_failed', 'the replication stream ended unexpectedly');
        } catch (error) {
          if (this.stopping || lockLost) break;
          const failure = error instanceof WalflowError && error.code === 'replication_failed' ? explainSlotError(error.cause ?? error, slotName) : error;
          if (PERMANENT.some((code) => isWalflowError(failure, code))) {
            const reason = (failure as WalflowError).message;
            if (this.current.state !== 'down' || this.current.reason !== reason) logger.error({ err: failure, slot: slotName }, 'replication stopped: this needs an operator');
            this.setState('down', 'leader', reason);
            return;
          }
          // The backoff starts over after a session that streamed a while, not after any that started: a failure
          // that comes every time soon after START_REPLICATION would otherwise reconnect at once, for ever.
          if (streamingSince !== undefined && performance.now() - streamingSince >= STREAMED_A_WHILE_MS) attempt = 0;
          streamingSince = undefined;
          const delayMs = backoffDelay(attempt++, { initialMs: 500, maxMs: 30_000, ...this.options.reconnect });
          this.setState('reconnecting', 'leader', failure instanceof Error ? failure.message : String(failure));
          logger.warn({ err: failure, slot: slotName, attempt, delayMs }, 'replication reconnecting');
          await this.pause.sleep(delayMs);
        } finally {
          this.session = null;
        }
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** A transactional logical message: it flows through the slot as an empty transaction that is acknowledged. */
  private async heartbeat(): Promise<void> {
    if (this.current.state !== 'streaming') return;
    try {
      await sql`SELECT pg_logical_emit_message(true, ${MESSAGE_PREFIX}, 'heartbeat')`.execute(this.options.db);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'heartbeat failed');
    }
  }

  /** Outbox rows written before the slot existed never reach the stream: say so at start. */
  private async reportOutboxOlderThanSlot(): Promise<void> {
    try {
      const { rows } = await sql<{ count: string; oldest: Date | null }>`
        SELECT count(*)::text AS count, min(o.created_at) AS oldest
          FROM walflow.outbox o JOIN walflow.consumer_state s ON s.slot_name = ${this.options.slotName}
         WHERE o.created_at < s.slot_created_at`.execute(this.options.db);
      const count = Number(rows[0]?.count ?? 0);
      if (count > 0) {
        this.options.logger.error(
          { slot: this.options.slotName, count, oldest: rows[0]?.oldest },
          'outbox rows older than the replication slot will never be streamed: run `walflow repair` to dispatch them',
        );
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not check the outbox for rows older than the slot');
    }
  }

  /** `since` stays while the state does: reconnecting since the first failed attempt, whatever each one's reason. */
  private setState(state: ConsumerState, role: ConsumerRole, reason?: string): void {
    const since = state === this.current.state && role === this.current.role ? this.current.since : new Date();
    this.current = reason === undefined ? { state, role, since } : { state, role, reason, since };
  }
}
