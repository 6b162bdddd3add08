import { isWalflowError, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { recordAudit } from './audit.js';
import { prune } from './prune.js';

/** The audit log's actor for the prunes retention makes, which are recorded like an operator's. */
export const RETENTION_ACTOR = 'walflow retention';

export interface RetentionOptions {
  db: Kysely<WalflowDatabase>;
  logger: Logger;
  /** WALFLOW_RETENTION_DAYS. */
  retentionDays: number;
  /** Whether this process prunes now: only the leader does, so that processes do not prune at once. */
  leading: () => boolean;
  /** How often to ask whether a prune is due. @default one hour */
  checkMs?: number;
  /** The first time, this long after the start: a process that restarts more often than it checks still prunes. @default one minute, or checkMs if shorter */
  firstCheckMs?: number;
}

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/**
 * Prunes with the retention window once a day. The day is counted from the last retention prune the audit log
 * holds, not from the process's start, which a fleet restarted more often than daily would never reach.
 */
export function startRetention(options: RetentionOptions): { stop(): Promise<void> } {
  const checkMs = options.checkMs ?? HOUR_MS;
  const stopping = new AbortController();
  let checking: Promise<void> | null = null;
  const check = (): void => {
    // One check at a time: a prune can take longer than the interval.
    if (checking !== null || !options.leading()) return;
    checking = pruneWhenDue(options, stopping.signal).finally(() => {
      checking = null;
    });
  };
  const first = setTimeout(check, Math.min(options.firstCheckMs ?? MINUTE_MS, checkMs));
  const every = setInterval(check, checkMs);
  first.unref();
  every.unref();
  return {
    /** Stops the prune under way, if any, between two of its batches: a stop does not wait for a whole prune. */
    async stop() {
      clearTimeout(first);
      clearInterval(every);
      stopping.abort();
      await checking;
    },
  };
}

async function pruneWhenDue({ db, logger, retentionDays }: RetentionOptions, signal: AbortSignal): Promise<void> {
  try {
    const { rows } = await sql<{ due: boolean }>`
      SELECT NOT EXISTS (SELECT FROM walflow.audit_log WHERE actor = ${RETENTION_ACTOR} AND action = 'prune' AND at > now() - interval '1 day') AS due`.execute(db);
    if (!rows[0]!.due) return;
    const olderThan = new Date(Date.now() - retentionDays * 86_400_000);
    const result = await prune(db, { olderThan, signal });
    await recordAudit(db, { actor: RETENTION_ACTOR, action: 'prune', arguments: { olderThan: olderThan.toISOString(), retentionDays, ...result } });
    logger.info({ ...result, retentionDays }, 'pruned data older than the retention window');
  } catch (error) {
    if (signal.aborted) logger.info('retention: prune stopped by the shutdown; the next start prunes the rest');
    else if (isWalflowError(error, 'prune_busy')) logger.info('retention: another prune is running; the next check prunes if it is still due');
    else logger.warn({ err: error }, 'pruning failed; the next check tries again');
  }
}
