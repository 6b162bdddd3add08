import type { WalflowDatabase } from '@walflow/core';
import { measureSinkLag, PENDING_COUNT_LIMIT, type SinkState, type SinkStatus } from '@walflow/nats-sink';
import type { Kysely } from 'kysely';
import type { HealthCheck, HealthState, HealthThresholds } from './health-report.js';

/** The JetStream sink in the health report. */
export interface SinkHealth {
  name: string;
  /** This process's sink; null when the report is computed without one (the CLI). */
  state: SinkState | null;
  /** Recorded events not yet published (counted up to 100,000) and the age of the oldest of them. */
  pending: number;
  lagSeconds: number;
  /** Events published since the sink's cursor was created; null before the sink first ran. */
  published: number | null;
}

/**
 * Sink lag against the replication lag thresholds, and a failing sink (NATS unreachable, the stream refusing
 * messages) as at least degraded: walflow itself goes on, nothing is lost, events wait in the log.
 */
export async function sinkHealth(
  db: Kysely<WalflowDatabase>,
  sink: { name: string; status?: SinkStatus | undefined },
  thresholds: HealthThresholds,
): Promise<{ summary: SinkHealth; check: HealthCheck }> {
  const lag = await measureSinkLag(db, sink.name);
  const pending = lag?.pending ?? 0;
  const lagSeconds = lag?.seconds ?? 0;
  const summary: SinkHealth = { name: sink.name, state: sink.status?.state ?? null, pending, lagSeconds, published: lag?.published ?? null };
  const backlog = `${pending >= PENDING_COUNT_LIMIT ? `${PENDING_COUNT_LIMIT}+` : pending} event${pending === 1 ? '' : 's'} not yet published, oldest ${lagSeconds.toFixed(1)} s`;
  const byLag: HealthState = lagSeconds > thresholds.lagSecondsDown ? 'down' : lagSeconds > thresholds.lagSecondsDegraded ? 'degraded' : 'ok';
  if (sink.status?.state === 'failing') {
    const state = byLag === 'down' ? 'down' : 'degraded';
    return { summary, check: { name: 'sink', state, message: `JetStream sink failing since ${sink.status.since.toISOString()}: ${sink.status.reason ?? 'unknown'}; ${backlog}` } };
  }
  return { summary, check: { name: 'sink', state: byLag, message: `JetStream sink ${sink.name} ${sink.status?.state ?? '(no process)'}: ${backlog}` } };
}
