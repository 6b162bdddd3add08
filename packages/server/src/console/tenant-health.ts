import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { OLDEST_QUEUED_SECONDS, RUN_CHECKS, runChecks, worstState, type HealthCheck, type HealthReport, type HealthState, type HealthThresholds } from '../health-report.js';

/**
 * Walflow's health as an operator fixed to a tenant may see it. The process's report counts every tenant's runs
 * and names every tenant's backlog, so it is not theirs to read: they get their own run checks, and the pipeline
 * all tenants share (consumer, slot, lag, sink) as a state without its messages and figures.
 */
export interface TenantHealth {
  /** The worse of the pipeline's state and the tenant's own checks. */
  status: HealthState;
  /** Null until the process's first report. */
  pipeline: HealthState | null;
  checks: HealthCheck[];
  /** ISO-8601 commit time of the tenant's last event since `since`. */
  lastEventAt: string | null;
}

/**
 * Reads through the tenant's scope, so row security counts its rows only. The last event is looked for since a
 * point in time (the overview's day): an unbounded search would scan the whole log for a tenant that is quiet.
 */
export async function tenantHealth(
  scoped: Kysely<WalflowDatabase>,
  options: { report: HealthReport | null; deadRuns: number; thresholds: HealthThresholds; since: Date },
): Promise<TenantHealth> {
  const { rows } = await sql<{ oldest_queued_seconds: number; dead_letters: number; last_event_at: string | null }>`
    SELECT ${OLDEST_QUEUED_SECONDS} AS oldest_queued_seconds,
           (SELECT count(*) FROM walflow.dead_letters WHERE resolved_at IS NULL)::int AS dead_letters,
           (SELECT to_json(max(committed_at)) #>> '{}' FROM walflow.events WHERE committed_at >= ${options.since}) AS last_event_at`.execute(scoped);
  const row = rows[0]!;
  const checks = runChecks({ dead: options.deadRuns, oldestQueuedSeconds: Math.max(0, row.oldest_queued_seconds), deadLetters: row.dead_letters }, options.thresholds);
  const pipeline = options.report && worstState(options.report.checks.filter((check) => !RUN_CHECKS.has(check.name)).map((check) => check.state));
  return { status: worstState([pipeline ?? 'ok', ...checks.map((check) => check.state)]), pipeline, checks, lastEventAt: row.last_event_at };
}
