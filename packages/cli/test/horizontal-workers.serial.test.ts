import type { WalflowDatabase } from '@walflow/core';
import { applyWorkflow } from '@walflow/executor';
import { emitMany } from '@walflow/outbox';
import { createDatabase, migrate } from '@walflow/server';
import { createTestDatabase, startPostgres, waitFor, type CreatedTestDatabase, type StartedPostgres } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWalflowProcess, type WalflowChild } from './walflow-process.js';

/**
 * One consumer process and worker processes claiming from the same database: every run executed exactly once,
 * and the throughput of three workers next to one (printed, never asserted: it depends on the machine).
 * WALFLOW_TEST_SCALE_RUNS sets the runs per phase (the README's figures: 20000; the default keeps `pnpm test` short).
 */
const RUNS = Number(process.env.WALFLOW_TEST_SCALE_RUNS ?? 2000);
const PHASE_TIMEOUT_MS = Math.max(120_000, RUNS * 60);
const SLOT = 'walflow_scale';
const logger = pino({ level: 'silent' });

let cluster: StartedPostgres;
let database: CreatedTestDatabase;
let db: Kysely<WalflowDatabase>;
let env: Record<string, string>;
let consumer: WalflowChild;
const children: WalflowChild[] = [];
const throughput: Record<string, number> = {};

beforeAll(async () => {
  cluster = await startPostgres({ dedicated: true });
  database = await createTestDatabase(cluster.url);
  // Claims of 20 runs: with the default 200, a few thousand runs are only a few claims, and one process may take
  // them all before the others ask.
  env = { DATABASE_URL: database.url, WALFLOW_SLOT: SLOT, WALFLOW_HTTP_PORT: '0', WALFLOW_LOG_LEVEL: 'info', WALFLOW_WORKER_CLAIM_BATCH: '20', WALFLOW_UPDATE_FIELDS: 'app.jobs.executions' };
  db = createDatabase(database.url, logger, { max: 4 });
  await migrate({ db, slotName: SLOT, logger });
  // The effect each run has: one increment of its own row, in the run's transaction.
  await sql`CREATE SCHEMA app`.execute(db);
  await sql`CREATE TABLE app.jobs (id integer PRIMARY KEY, executions integer NOT NULL DEFAULT 0)`.execute(db);
  consumer = await start('consumer');
});
afterEach(() => {
  for (const child of children.splice(0)) if (child !== consumer) child.kill('SIGKILL');
});
afterAll(async () => {
  consumer?.kill('SIGKILL');
  await db?.destroy();
  await database?.drop();
  await cluster?.stop();
});

async function start(role: 'consumer' | 'worker'): Promise<WalflowChild> {
  const child = await startWalflowProcess(env, role);
  children.push(child);
  return child;
}

async function count(query: ReturnType<typeof sql<{ n: string }>>): Promise<number> {
  return Number((await query.execute(db)).rows[0]?.n);
}

/**
 * Queues RUNS runs of a tenant of their own while no worker runs, then starts `workers` worker processes and
 * times them from the first run started to the last finished (database clocks). Returns, too, how many runs each
 * worker process claimed.
 */
async function runPhase(tenant: string, workers: number, firstJob: number): Promise<{ seconds: number; runsClaimed: number[] }> {
  await applyWorkflow(
    db,
    {
      tenant,
      name: 'count-job',
      trigger: { event: 'job.requested' },
      actions: [{ type: 'update_field', table: 'app.jobs', key: { column: 'id', value: '{{event.payload.id}}' }, column: 'executions', increment: 1 }],
    },
    { updateFields: ['app.jobs.executions'] },
  );
  await sql`INSERT INTO app.jobs (id) SELECT generate_series(${firstJob}::int, ${firstJob + RUNS - 1}::int)`.execute(db);
  for (let start = 0; start < RUNS; start += 500) {
    const ids = Array.from({ length: Math.min(500, RUNS - start) }, (_, n) => firstJob + start + n);
    await emitMany(db, ids.map((id) => ({ type: 'job.requested', tenantId: tenant, payload: { id } })));
  }
  await waitFor(`${RUNS} queued runs of ${tenant}`, async () => (await count(sql`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = ${tenant}`)) === RUNS, {
    timeoutMs: PHASE_TIMEOUT_MS,
    intervalMs: 250,
  });

  const started = await Promise.all(Array.from({ length: workers }, () => start('worker')));
  await waitFor(
    `${RUNS} succeeded runs of ${tenant}`,
    async () => (await count(sql`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = ${tenant} AND status = 'succeeded'`)) === RUNS,
    { timeoutMs: PHASE_TIMEOUT_MS, intervalMs: 100 },
  );
  for (const worker of started) worker.kill('SIGTERM');
  expect(await Promise.all(started.map((worker) => worker.exited))).toEqual(started.map(() => 0));

  const { rows } = await sql<{ seconds: number }>`
    SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 AS seconds FROM walflow.workflow_runs WHERE tenant_id = ${tenant}`.execute(db);
  return { seconds: rows[0]!.seconds, runsClaimed: started.map(runsClaimedBy) };
}

/** What a worker process's pool says it claimed, in its log line at stop. */
function runsClaimedBy(worker: WalflowChild): number {
  const stopped = worker
    .stdout()
    .split('\n')
    .filter((line) => line.includes('"worker pool stopped"'))
    .map((line) => JSON.parse(line) as { runsClaimed: number });
  expect(stopped).toHaveLength(1);
  return stopped[0]!.runsClaimed;
}

/** Every run succeeded at its first attempt, and its one effect happened exactly once. */
async function expectExactlyOnce(tenant: string, firstJob: number): Promise<void> {
  const lastJob = firstJob + RUNS - 1;
  expect(await count(sql`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = ${tenant} AND status = 'succeeded' AND attempts = 1`)).toBe(RUNS);
  expect(await count(sql`SELECT count(*) AS n FROM app.jobs WHERE id BETWEEN ${firstJob} AND ${lastJob} AND executions = 1`)).toBe(RUNS);
  expect(await count(sql`SELECT coalesce(sum(executions), 0) AS n FROM app.jobs WHERE id BETWEEN ${firstJob} AND ${lastJob}`)).toBe(RUNS);
  expect(
    await count(sql`
      SELECT count(*) AS n FROM walflow.action_outcomes o JOIN walflow.workflow_runs r ON r.id = o.run_id
       WHERE r.tenant_id = ${tenant} AND o.status = 'succeeded' AND o.attempts = 1`),
  ).toBe(RUNS);
}

describe(`one consumer and worker processes on ${RUNS} runs`, () => {
  it('one worker executes every run exactly once', async () => {
    const { seconds } = await runPhase('one-worker', 1, 1);
    await expectExactlyOnce('one-worker', 1);
    throughput.one = RUNS / seconds;
    console.info(`1 worker process: ${RUNS} runs in ${seconds.toFixed(1)} s, ${throughput.one.toFixed(0)} runs/s`);
  }, PHASE_TIMEOUT_MS * 2);

  it('three workers execute every run exactly once, all three taking part', async () => {
    const { seconds, runsClaimed } = await runPhase('three-workers', 3, RUNS + 1);
    await expectExactlyOnce('three-workers', RUNS + 1);
    expect(runsClaimed.every((runs) => runs > 0)).toBe(true);
    expect(runsClaimed.reduce((sum, runs) => sum + runs, 0)).toBe(RUNS);
    throughput.three = RUNS / seconds;
    const ratio = throughput.one === undefined ? '' : `, ${(throughput.three / throughput.one).toFixed(2)}× one worker`;
    console.info(`3 worker processes: ${RUNS} runs in ${seconds.toFixed(1)} s, ${throughput.three.toFixed(0)} runs/s${ratio}`);
  }, PHASE_TIMEOUT_MS * 2);
});
