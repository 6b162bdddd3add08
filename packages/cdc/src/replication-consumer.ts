import { backoffDelay, isWalflowError, WalflowError, type BackoffOptions, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { explainSlotError, inspectSlot, missingSlotError, SLOT_PLUGIN } from './slot.js';
import { StreamSession, type StreamSessionOptions } from './stream-session.js';

export type ConsumerState = 'starting' | 'streaming' | 'reconnecting' | 'down' | 'stopped';

export interface ConsumerStatus {
  state: ConsumerState;
  /** Why the consumer is not streaming, and for `down` what an operator must do. */
  reason?: string;
  since: Date;
}

export interface ReplicationConsumerOptions extends Omit<StreamSessionOptions, 'onStreaming'> {
  /** A normal (non-replication) connection for slot checks. */
  db: Kysely<WalflowDatabase>;
  /** Reconnect delays. @default { initialMs: 500, maxMs: 30000 } */
  reconnect?: BackoffOptions;
}

/** Errors no reconnect can fix: the consumer stops and reports them instead of retrying forever. */
const PERMANENT = ['slot_missing', 'slot_plugin_not_allowed', 'wal_level_not_logical'] as const;

/**
 * Keeps a replication session running: a new session (and replication connection) for every attempt, with
 * capped exponential backoff and jitter between them. A stop drains the current session first.
 */
export class ReplicationConsumer {
  private current: ConsumerStatus = { state: 'stopped', since: new Date() };
  private session: StreamSession | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;

  constructor(private readonly options: ReplicationConsumerOptions) {}

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
    this.wake?.();
    await this.session?.stop();
    await this.loop;
    this.loop = null;
  }

  private async run(): Promise<void> {
    const { logger, slotName } = this.options;
    this.setState('starting');
    await this.reportOutboxOlderThanSlot();
    let attempt = 0;
    while (!this.stopping) {
      try {
        await this.checkSlot();
        this.session = new StreamSession({
          ...this.options,
          onStreaming: () => {
            attempt = 0;
            this.setState('streaming');
            logger.info({ slot: slotName }, 'replication streaming');
          },
        });
        await this.session.run();
        if (!this.stopping) throw new WalflowError('replication_failed', 'the replication stream ended unexpectedly');
      } catch (error) {
        if (this.stopping) break;
        const failure = error instanceof WalflowError && error.code === 'replication_failed' ? explainSlotError(error.cause ?? error, slotName) : error;
        if (PERMANENT.some((code) => isWalflowError(failure, code))) {
          this.setState('down', (failure as WalflowError).message);
          logger.error({ err: failure, slot: slotName }, 'replication stopped: this needs an operator');
          return;
        }
        const delayMs = backoffDelay(attempt++, { initialMs: 500, maxMs: 30_000, ...this.options.reconnect });
        this.setState('reconnecting', failure instanceof Error ? failure.message : String(failure));
        logger.warn({ err: failure, slot: slotName, attempt, delayMs }, 'replication reconnecting');
        await this.sleep(delayMs);
      } finally {
        this.session = null;
      }
    }
    this.setState('stopped');
  }

  private async checkSlot(): Promise<void> {
    const slot = await inspectSlot(this.options.db, this.options.slotName);
    if (!slot) throw missingSlotError(this.options.slotName);
    if (slot.plugin !== SLOT_PLUGIN) {
      throw new WalflowError('slot_plugin_not_allowed', `replication slot ${slot.name} uses ${slot.plugin ?? 'no'} plugin, not ${SLOT_PLUGIN}`);
    }
    if (slot.walStatus === 'lost') {
      throw new WalflowError(
        'slot_missing',
        `replication slot ${slot.name} was invalidated (wal_status=lost, max_slot_wal_keep_size exceeded): run \`walflow repair\``,
      );
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

  private setState(state: ConsumerState, reason?: string): void {
    this.current = reason === undefined ? { state, since: new Date() } : { state, reason, since: new Date() };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
