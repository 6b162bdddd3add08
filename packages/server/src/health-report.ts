import type { ConsumerStatus } from '@walflow/cdc';
import type { WalflowDatabase } from '@walflow/core';
import type { SinkStatus } from '@walflow/nats-sink';
import { sql, type Kysely } from 'kysely';
import { sinkHealth, type SinkHealth } from './sink-health.js';
import { secondsToInvalidation, type WalRate } from './wal-rate.js';

export type HealthState = 'ok' | 'degraded' | 'down';

export interface HealthCheck {
  name: 'consumer' | 'slot' | 'lag_seconds' | 'lag_bytes' | 'oldest_queued_run' | 'dead_runs' | 'dead_letters' | 'sink' | 'report';
  state: HealthState;
  message: string;
}

export interface HealthThresholds {
  lagSecondsDegraded: number;
  lagSecondsDown: number;
  lagBytesDegraded: number;
  lagBytesDown: number;
  queuedSecondsDegraded: number;
  deadRunsDegraded: number;
  /** Open dead letters: outbox rows parked instead of recorded, whose events no workflow will see until retried. */
  deadLettersDegraded: number;
  /**
   * How long the leading consumer may try to reconnect, without streaming in between, before the report is down: a
   * failure that every attempt meets (a role without REPLICATION, another client streaming the slot) is retried for
   * ever, and on a quiet database no lag would show it.
   */
  reconnectingSecondsDown: number;
}

export interface HealthReport {
  status: HealthState;
  role: 'leader' | 'standby' | null;
  slot: { name: string; active: boolean; walStatus: string | null } | null;
  lag: { bytes: number; seconds: number; retainedBytes: number; safeWalSizeBytes: number | null; secondsToInvalidation: number | null };
  runs: { queued: number; running: number; dead: number; oldestQueuedSeconds: number };
  /** Outbox rows that could not become events and are not resolved yet. */
  deadLetters: number;
  /** ISO-8601 commit time of the last recorded transaction. */
  lastEventAt: string | null;
  checks: HealthCheck[];
  /** The JetStream sink, when one is configured. */
  sink?: SinkHealth;
  /** ISO-8601 time the report was computed. */
  at: string;
}

export interface ComputeHealthOptions {
  slotName: string;
  /** The in-process consumer; without it (the CLI while walflow is down) role is null and the consumer check is left out. */
  consumer?: ConsumerStatus;
  thresholds: HealthThresholds;
  /** Successive reports share it to estimate the WAL rate; without it secondsToInvalidation stays null. */
  walRate?: WalRate;
  /** The JetStream sink's cursor name and, in the process that runs it, its status. */
  sink?: { name: string; status?: SinkStatus | undefined } | undefined;
  /**
   * The longest each statement may run, waiting for locks included: a refresh given up on would otherwise keep its
   * connection waiting, and each later one take another, until the pool had none left for dispatch and workers.
   */
  statementTimeoutMs?: number | undefined;
}

interface SlotRow {
  active: boolean;
  wal_status: string | null;
  safe_wal_size: number | null;
  lag_bytes: number | null;
  retained_bytes: number | null;
}

interface DatabaseRow {
  lag_seconds: number;
  queued: number;
  running: number;
  dead: number;
  oldest_queued_seconds: number;
  dead_letters: number;
  last_commit_at: string | null;
  wal_position: number;
  sampled_at_ms: number;
}

const RANK: Record<HealthState, number> = { ok: 0, degraded: 1, down: 2 };

/** What an operator does about a check that is not ok, where its message alone would not say. */
const CONSUMER_BEHIND = 'the consumer is stopped or behind: see the consumer check, or walflow status';
const DEAD_RUNS_REMEDY = 'walflow dead-runs list, then retry or discard them once their cause is fixed';
const DEAD_LETTERS_REMEDY = 'their events reach no workflow: walflow dead-letters list, then retry or discard them once their cause is fixed';

/** The checks of the run backlog, which row security can narrow to a tenant; the others are of the shared pipeline. */
export const RUN_CHECKS: ReadonlySet<HealthCheck['name']> = new Set(['oldest_queued_run', 'dead_runs', 'dead_letters']);

/**
 * Seconds the oldest runnable queued run has waited: a retry waiting for its backoff is not a backlog, nor is a run
 * of a paused workflow, which waits for it to be resumed.
 */
export const OLDEST_QUEUED_SECONDS = sql<number>`
  coalesce(extract(epoch FROM now() - (SELECT r.next_attempt_at FROM walflow.workflow_runs r
                                        WHERE r.status = 'queued' AND r.next_attempt_at <= now()
                                          AND NOT EXISTS (SELECT FROM walflow.workflows w WHERE w.id = r.workflow_id AND w.status = 'paused')
                                        ORDER BY r.next_attempt_at LIMIT 1)), 0)::float8`;

/** Replication lag, slot retention, run backlog and the consumer's state, in two queries, judged against thresholds. */
export async function computeHealth(db: Kysely<WalflowDatabase>, options: ComputeHealthOptions): Promise<HealthReport> {
  const { statementTimeoutMs } = options;
  if (statementTimeoutMs === undefined) return measure(db, options);
  return db.transaction().execute(async (trx) => {
    await sql`SELECT set_config('statement_timeout', ${String(statementTimeoutMs)}, true)`.execute(trx);
    return measure(trx, options);
  });
}

async function measure(db: Kysely<WalflowDatabase>, options: ComputeHealthOptions): Promise<HealthReport> {
  const { slotName, consumer, thresholds } = options;
  const [slotResult, databaseResult] = await Promise.all([
    sql<SlotRow>`
      SELECT active, wal_status, safe_wal_size::float8 AS safe_wal_size,
             pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS lag_bytes,
             pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 AS retained_bytes
        FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(db),
    sql<DatabaseRow>`
      SELECT coalesce(extract(epoch FROM now() - (SELECT min(created_at) FROM walflow.outbox)), 0)::float8 AS lag_seconds,
             (SELECT count(*) FROM walflow.workflow_runs WHERE status = 'queued')::int AS queued,
             (SELECT count(*) FROM walflow.workflow_runs WHERE status = 'running')::int AS running,
             (SELECT count(*) FROM walflow.workflow_runs WHERE status = 'dead')::int AS dead,
             ${OLDEST_QUEUED_SECONDS} AS oldest_queued_seconds,
             (SELECT count(*) FROM walflow.dead_letters WHERE resolved_at IS NULL)::int AS dead_letters,
             (SELECT to_json(last_commit_at) #>> '{}' FROM walflow.consumer_state WHERE slot_name = ${slotName}) AS last_commit_at,
             pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS wal_position,
             (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS sampled_at_ms`.execute(db),
  ]);
  const slotRow = slotResult.rows[0];
  const row = databaseResult.rows[0];
  if (row === undefined) throw new Error('the health query returned no row');

  const lag = {
    bytes: Math.max(0, slotRow?.lag_bytes ?? 0),
    seconds: Math.max(0, row.lag_seconds),
    retainedBytes: Math.max(0, slotRow?.retained_bytes ?? 0),
    safeWalSizeBytes: slotRow?.safe_wal_size ?? null,
    secondsToInvalidation: secondsToInvalidation(slotRow?.safe_wal_size ?? null, options.walRate?.observe(row.wal_position, row.sampled_at_ms) ?? null),
  };
  const runs = { queued: row.queued, running: row.running, dead: row.dead, oldestQueuedSeconds: Math.max(0, row.oldest_queued_seconds) };
  const checks: HealthCheck[] = [];
  if (consumer !== undefined) checks.push(consumerCheck(consumer, thresholds));
  checks.push(slotCheck(slotName, slotRow, consumer?.role ?? null));
  checks.push(
    levelCheck('lag_seconds', lag.seconds, thresholds.lagSecondsDegraded, thresholds.lagSecondsDown, (v) => `oldest unrecorded outbox row is ${v.toFixed(1)} s old`, CONSUMER_BEHIND),
    levelCheck('lag_bytes', lag.bytes, thresholds.lagBytesDegraded, thresholds.lagBytesDown, (v) => `slot is ${formatBytes(v)} behind the current WAL position`, CONSUMER_BEHIND),
    ...runChecks({ ...runs, deadLetters: row.dead_letters }, thresholds),
  );
  const sink = options.sink === undefined ? undefined : await sinkHealth(db, options.sink, thresholds);
  if (sink !== undefined) checks.push(sink.check);
  const status = worstState(checks.map((check) => check.state));
  return {
    status,
    role: consumer?.role ?? null,
    slot: slotRow === undefined ? null : { name: slotName, active: slotRow.active, walStatus: slotRow.wal_status },
    lag,
    runs,
    deadLetters: row.dead_letters,
    lastEventAt: row.last_commit_at,
    checks,
    ...(sink === undefined ? {} : { sink: sink.summary }),
    at: new Date().toISOString(),
  };
}

/** The run backlog and the dead letters judged against the thresholds: the checks named in RUN_CHECKS. */
export function runChecks(runs: { dead: number; oldestQueuedSeconds: number; deadLetters: number }, thresholds: HealthThresholds): HealthCheck[] {
  return [
    levelCheck(
      'oldest_queued_run',
      runs.oldestQueuedSeconds,
      thresholds.queuedSecondsDegraded,
      Infinity,
      (v) => `oldest runnable queued run waits ${v.toFixed(1)} s`,
      'workers are stopped or behind: check the processes of role worker or all, or start more',
    ),
    {
      name: 'dead_runs',
      state: runs.dead >= thresholds.deadRunsDegraded ? 'degraded' : 'ok',
      message: `${runs.dead} dead run${runs.dead === 1 ? '' : 's'}${runs.dead >= thresholds.deadRunsDegraded ? `: ${DEAD_RUNS_REMEDY}` : ''}`,
    },
    {
      name: 'dead_letters',
      state: runs.deadLetters >= thresholds.deadLettersDegraded ? 'degraded' : 'ok',
      message: `${runs.deadLetters} open dead letter${runs.deadLetters === 1 ? '' : 's'}${runs.deadLetters >= thresholds.deadLettersDegraded ? `: ${DEAD_LETTERS_REMEDY}` : ''}`,
    },
  ];
}

const RECONNECTING_REMEDY =
  'no attempt has streamed since: the error above comes back at every one (check the role\'s REPLICATION right, pg_hba.conf, and pg_stat_replication for another client on the slot)';

export function worstState(states: readonly HealthState[]): HealthState {
  return states.reduce<HealthState>((worst, state) => (RANK[state] > RANK[worst] ? state : worst), 'ok');
}

export function consumerCheck(consumer: ConsumerStatus, thresholds: Pick<HealthThresholds, 'reconnectingSecondsDown'>, now = Date.now()): HealthCheck {
  const detail = consumer.reason === undefined ? '' : `: ${consumer.reason}`;
  const message = `${consumer.state} since ${consumer.since.toISOString()}${detail}`;
  if (consumer.state === 'down') return { name: 'consumer', state: 'down', message };
  if (consumer.state === 'streaming' || consumer.state === 'standby') return { name: 'consumer', state: 'ok', message };
  if (consumer.state === 'reconnecting' && now - consumer.since.getTime() >= thresholds.reconnectingSecondsDown * 1000) {
    return { name: 'consumer', state: 'down', message: `${message}: ${RECONNECTING_REMEDY}` };
  }
  return { name: 'consumer', state: 'degraded', message };
}

/**
 * `role`: that of the consumer of the process that computes the report. The leader's consumer check says whether the
 * slot is read. Anywhere else (a standby, `walflow status` from the database, a process of role http or worker), an
 * inactive slot is the only sign that no process reads it, which on a quiet system no lag would show for hours: every
 * process in standby, say, while a session that does not stream holds the leader lock.
 */
function slotCheck(slotName: string, slot: SlotRow | undefined, role: ConsumerStatus['role'] | null): HealthCheck {
  if (slot === undefined) return { name: 'slot', state: 'down', message: `replication slot ${slotName} is missing: run walflow repair` };
  if (slot.wal_status === 'lost') return { name: 'slot', state: 'down', message: `replication slot ${slotName} was invalidated (wal_status lost): run walflow repair` };
  // 'unreserved': the next checkpoint may remove WAL the slot still needs.
  if (slot.wal_status === 'unreserved') return { name: 'slot', state: 'degraded', message: `replication slot ${slotName} is about to lose WAL it needs (wal_status unreserved): let the consumer catch up, or raise max_slot_wal_keep_size` };
  const described = `replication slot ${slotName} is ${slot.active ? 'active' : 'inactive'} (wal_status ${slot.wal_status ?? 'unknown'})`;
  if (!slot.active && role === 'standby') {
    return { name: 'slot', state: 'degraded', message: `${described}: no process streams it while this one stands by; the leader lock's holder (pg_locks) does not stream` };
  }
  if (!slot.active && role === null) return { name: 'slot', state: 'degraded', message: `${described}: no walflow process is consuming it; start one (walflow start, role all or consumer)` };
  return { name: 'slot', state: 'ok', message: described };
}

/** A measure judged against its thresholds; past one, its message also says what to do. */
function levelCheck(name: HealthCheck['name'], value: number, degraded: number, down: number, describe: (value: number) => string, remedy: string): HealthCheck {
  const state: HealthState = value > down ? 'down' : value > degraded ? 'degraded' : 'ok';
  return { name, state, message: state === 'ok' ? describe(value) : `${describe(value)}: ${remedy}` };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit] ?? 'B'}`;
}

/**
 * A served report as it stands `ageMs` after it was computed: older than `staleAfterMs`, the database has not
 * answered its queries since (down, or held by a lock), and the report is down whatever it said then.
 */
export function reportAsOfNow(report: HealthReport, ageMs: number, staleAfterMs: number): HealthReport {
  if (ageMs <= staleAfterMs) return report;
  const message = `the database has not answered the health queries for ${Math.round(ageMs / 1000)} s; the rest of this report is from ${report.at}`;
  return { ...report, status: 'down', checks: [...report.checks, { name: 'report', state: 'down', message }] };
}

/** 200 while walflow works (perhaps degraded), 503 when an operator must act. */
export function healthHttpStatus(report: HealthReport): number {
  return report.status === 'down' ? 503 : 200;
}
