import type { WalflowDatabase } from '@walflow/core';
import { emit } from '@walflow/outbox';
import { discardDeadLetter } from '@walflow/executor';
import { computeHealth, createDatabase, migrate, startWalflow, type HealthReport, type HealthThresholds, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, holdOpen, silentLogger, startTestWalflow, testConfig } from './fixtures.js';

const database = useTestDatabase();
const MIB = 1024 * 1024;
let db: Kysely<WalflowDatabase>;
let defaults: HealthThresholds;
let walflow: RunningWalflow | undefined;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger);
  defaults = testConfig(database.url, database.slotName).healthThresholds;
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
});
afterAll(async () => {
  await walflow?.stop();
  await db?.destroy();
});

const check = (report: HealthReport, name: string) => report.checks.find((entry) => entry.name === name);

async function get(path: string): Promise<{ status: number; contentType: string; text: string }> {
  const response = await fetch(`http://127.0.0.1:${walflow?.httpPort}${path}`);
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

describe('health report and metrics', () => {
  it('measures the backlog while walflow is not running, judges it against thresholds, and sees it drain', async () => {
    await applyTestWorkflow(db, { tenant: 'health', name: 'queue-one', trigger: { event: 'health.pinged' }, actions: [{ type: 'emit_event', event: 'health.ponged' }] });
    await db.transaction().execute(async (trx) => {
      for (let n = 0; n < 5; n++) await emit(trx, { type: 'health.pinged', tenantId: 'health', payload: { n } });
    });
    await new Promise((resolve) => setTimeout(resolve, 1100));

    const stopped = await computeHealth(db, { slotName: database.slotName, thresholds: defaults });
    expect(stopped.role).toBeNull();
    expect(check(stopped, 'consumer')).toBeUndefined();
    expect(stopped.slot).toMatchObject({ name: database.slotName, active: false });
    expect(stopped.lag.bytes).toBeGreaterThan(0);
    expect(stopped.lag.seconds).toBeGreaterThan(1);
    expect(stopped.lag.retainedBytes).toBeGreaterThanOrEqual(stopped.lag.bytes);
    // Computed from the database with no walflow running (walflow status): nothing says the slot is read.
    expect(stopped.status).toBe('degraded');
    expect(check(stopped, 'slot')).toMatchObject({ state: 'degraded', message: expect.stringMatching(/is inactive .*: no walflow process is consuming it/) });
    // A standby judges the slot so too: every process in standby reads nothing, while a session that does not
    // stream holds the leader lock, say.
    const standby = await computeHealth(db, { slotName: database.slotName, thresholds: defaults, consumer: { state: 'standby', role: 'standby', since: new Date() } });
    expect(check(standby, 'slot')).toMatchObject({ state: 'degraded', message: expect.stringMatching(/is inactive .*: no process streams it while this one stands by/) });
    expect(check(stopped, 'lag_seconds')).toMatchObject({ state: 'ok', message: expect.stringMatching(/^oldest unrecorded outbox row is [\d.]+ s old$/) });

    const degraded = await computeHealth(db, { slotName: database.slotName, thresholds: { ...defaults, lagSecondsDegraded: 0 } });
    expect(degraded.status).toBe('degraded');
    expect(check(degraded, 'lag_seconds')?.state).toBe('degraded');
    expect(check(degraded, 'lag_seconds')?.message).toMatch(/s old: the consumer is stopped or behind: see the consumer check/);
    const down = await computeHealth(db, { slotName: database.slotName, thresholds: { ...defaults, lagSecondsDegraded: 0, lagSecondsDown: 0, lagBytesDown: 0 } });
    expect(down.status).toBe('down');
    expect(check(down, 'lag_bytes')?.state).toBe('down');
    expect(check(down, 'lag_bytes')?.message).toMatch(/behind the current WAL position: the consumer is stopped or behind/);
    const missing = await computeHealth(db, { slotName: 'no_such_slot', thresholds: defaults });
    expect(missing).toMatchObject({ status: 'down', slot: null, lag: { bytes: 0 } });
    expect(check(missing, 'slot')?.message).toContain('walflow repair');

    // No workers, so the fired runs stay queued and the queued-run threshold turns the process degraded.
    walflow = await startTestWalflow(database.url, database.slotName, {
      workerConcurrency: 0,
      heartbeatMs: 200,
      healthThresholds: { ...defaults, queuedSecondsDegraded: 0 },
    });
    const caughtUp = await waitFor('walflow to record the backlog and the slot to catch up', async () => {
      const report = await computeHealth(db, { slotName: database.slotName, thresholds: defaults });
      return report.lag.seconds === 0 && report.lag.bytes < MIB && report.runs.queued >= 5 ? report : undefined;
    });
    expect(caughtUp.lastEventAt).not.toBeNull();
    // The same report from the database: the slot is read now.
    expect(check(caughtUp, 'slot')?.state).toBe('ok');

    const health = await waitFor('/health to report the queued runs', async () => {
      const response = await get('/health');
      const report = JSON.parse(response.text) as HealthReport;
      return response.status === 200 && report.role === 'leader' && check(report, 'consumer')?.state === 'ok' && report.runs.queued >= 5 ? report : undefined;
    });
    expect(health.status).toBe('degraded');
    expect(check(health, 'oldest_queued_run')?.state).toBe('degraded');
    expect(check(health, 'oldest_queued_run')?.message).toMatch(/s: workers are stopped or behind/);
    expect(check(health, 'dead_runs')?.message).toBe('0 dead runs');
    expect(check(health, 'dead_letters')?.message).toBe('0 open dead letters');
    expect(health.slot).toMatchObject({ name: database.slotName, active: true });
    expect(health.lag.seconds).toBe(0);
    expect((await get('/readyz')).status).toBe(200);
  });

  it('serves Prometheus metrics from its own registry', async () => {
    const { status, contentType, text } = await waitFor('the gauges to follow the health refresh', async () => {
      const response = await get('/metrics');
      return /^walflow_runs\{status="queued"\} [5-9]/m.test(response.text) ? response : undefined;
    });
    expect(status).toBe(200);
    expect(contentType).toContain('text/plain');
    for (const name of [
      'walflow_events_recorded_total',
      'walflow_replication_lag_bytes',
      'walflow_replication_lag_seconds',
      'walflow_runs',
      'walflow_leader',
      'walflow_dead_letters',
      'walflow_dispatch_batches_total',
      'walflow_dispatch_batch_size',
      'walflow_dispatch_batch_duration_seconds',
      'walflow_commit_to_record_seconds',
      'walflow_decisions_total',
      'walflow_action_duration_seconds',
      'walflow_run_attempts_total',
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, 'm'));
    }
    expect(text).toMatch(/^walflow_events_recorded_total\{type="health\.pinged"\} 5$/m);
    expect(text).toMatch(/^walflow_leader 1$/m);
    expect(text).toMatch(/^walflow_decisions_total\{outcome="fired"\} 5$/m);
    expect(text).toMatch(/^walflow_commit_to_record_seconds_count [1-9]/m);
    expect(text).toMatch(/^walflow_dispatch_batch_duration_seconds_count [1-9]/m);
    expect(text).not.toMatch(/^process_cpu/m);
  });

  it('lets a worker process serve its own attempts and action durations when WALFLOW_HTTP_PORT is set, and nothing otherwise', async () => {
    // testConfig sets WALFLOW_HTTP_PORT (0: any free port). The runs the consumer queued with no worker of its own run here.
    // A console token set for every process, as a shared environment does: a worker serves no console all the same.
    const worker = await startWalflow({ ...testConfig(database.url, database.slotName), role: 'worker', console: { token: 'a-console-token-of-32-characters', tenantTokens: new Map() } }, silentLogger);
    try {
      expect(worker.httpPort).not.toBeNull();
      const text = await waitFor('the worker to count its attempts', async () => {
        const response = await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`);
        const body = await response.text();
        return /^walflow_run_attempts_total\{result="succeeded"\} [5-9]/m.test(body) ? body : undefined;
      });
      expect(text).toMatch(/^walflow_action_duration_seconds_count\{type="emit_event",result="succeeded"\} [5-9]/m);
      expect((await fetch(`http://127.0.0.1:${worker.httpPort}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${worker.httpPort}/console`)).status).toBe(404);
    } finally {
      await worker.stop();
    }
    const quiet = await startWalflow({ ...testConfig(database.url, database.slotName), role: 'worker', httpPortChosen: false }, silentLogger);
    expect(quiet.httpPort).toBeNull();
    await quiet.stop();
  });
});

describe('a database that stops answering the health queries', () => {
  it('turns the served report down once it is older than five refreshes, and not ready, instead of the last ok', async () => {
    const started = walflow ?? (walflow = await startTestWalflow(database.url, database.slotName));
    await waitFor('a report', async () => (await get('/health')).status === 200);
    // The health queries count runs: they wait behind this lock, as behind a migration rebuilding an index.
    const locker = await started.db.connection().execute(async (connection) => {
      await sql`BEGIN`.execute(connection);
      await sql`LOCK walflow.workflow_runs IN ACCESS EXCLUSIVE MODE`.execute(connection);
      const stale = await waitFor('the report to go stale', async () => {
        const health = await get('/health');
        return health.status === 503 ? health : undefined;
      }, { timeoutMs: 20_000, intervalMs: 500 });
      const ready = await get('/readyz');
      const gauges = await get('/metrics');
      await sql`ROLLBACK`.execute(connection);
      return { stale, ready, gauges };
    });
    expect(locker.gauges.text).toMatch(/^walflow_health_status 2$/m);
    const report = JSON.parse(locker.stale.text) as HealthReport;
    expect(report.status).toBe('down');
    expect(check(report, 'report')?.message).toMatch(/has not answered the health queries for \d+ s/);
    expect(locker.ready.status).toBe(503);
    await waitFor('the report to recover', async () => (await get('/health')).status === 200, { timeoutMs: 20_000 });
  });
});

describe('dead letters', () => {
  it('degrade the report while one is open: its event reaches no workflow, and no lag shows it', async () => {
    const before = await db.selectFrom('walflow.dead_letters').select(sql<number>`count(*)::int`.as('n')).where('resolved_at', 'is', null).executeTakeFirstOrThrow();
    // Not a JSON object: parked by the consumer instead of recorded.
    await sql`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('health-letters', 'health.pinged', '[1]')`.execute(db);
    await walflow?.stop();
    walflow = await startTestWalflow(database.url, database.slotName);
    const report = await waitFor('the letter to be parked', async () => {
      const measured = await computeHealth(db, { slotName: database.slotName, thresholds: defaults });
      return measured.deadLetters > before.n && measured.lag.seconds === 0 ? measured : undefined;
    });
    expect(report.status).toBe('degraded');
    expect(check(report, 'dead_letters')).toEqual({
      name: 'dead_letters',
      state: 'degraded',
      message: `${report.deadLetters} open dead letter${report.deadLetters === 1 ? '' : 's'}: their events reach no workflow: walflow dead-letters list, then retry or discard them once their cause is fixed`,
    });
    // A letter discarded is resolved, and counts no more.
    const letter = await db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', 'health-letters').where('resolved_at', 'is', null).executeTakeFirstOrThrow();
    await discardDeadLetter(db, letter.id);
    expect((await computeHealth(db, { slotName: database.slotName, thresholds: defaults })).deadLetters).toBe(report.deadLetters - 1);
  });
});

describe('the health queries with a statement timeout', () => {
  it('end when a lock keeps them waiting, and leave no session waiting behind', async () => {
    // walflow's own refreshes would wait on the lock too.
    await walflow?.stop();
    walflow = undefined;
    const lock = await holdOpen(db, sql`LOCK TABLE walflow.dead_letters IN ACCESS EXCLUSIVE MODE`);
    try {
      await expect(computeHealth(db, { slotName: database.slotName, thresholds: defaults, statementTimeoutMs: 300 })).rejects.toMatchObject({ code: '57014' });
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%dead_letters%' AND pid <> pg_backend_pid()`.execute(db);
      expect(rows[0]!.n).toBe(0);
    } finally {
      await lock.release();
    }
  });
});
