import type { WalflowDatabase } from '@walflow/core';
import { claimRuns, releaseHeldRuns, type ClaimedRun, type WorkflowDefinitionInput } from '@walflow/executor';
import { emitMany } from '@walflow/outbox';
import { createDatabase, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, silentLogger, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
/** No workers of its own: it only queues runs, which the claimers below race for. */
let walflow: RunningWalflow;
let db: Kysely<WalflowDatabase>;
const CLAIMERS = 16;

beforeAll(async () => {
  walflow = await startTestWalflow(database.url, database.slotName, { workerConcurrency: 0 });
  db = createDatabase(database.url, silentLogger, { max: CLAIMERS + 2 });
});
afterAll(async () => {
  await db?.destroy();
  await walflow?.stop();
});

/** Applies the workflow and queues one run per payload through the real consumer. */
async function queueRuns(tenant: string, workflow: Omit<WorkflowDefinitionInput, 'tenant' | 'trigger'>, payloads: Record<string, unknown>[]): Promise<string> {
  const workflowId = await applyTestWorkflow(db, { tenant, trigger: { event: 'job.requested' }, ...workflow });
  await emitMany(db, payloads.map((payload) => ({ type: 'job.requested', tenantId: tenant, payload })));
  await waitFor(`${payloads.length} runs of ${tenant}`, async () => {
    const row = await db.selectFrom('walflow.workflow_runs').select((eb) => eb.fn.countAll<string>().as('n')).where('tenant_id', '=', tenant).executeTakeFirstOrThrow();
    return Number(row.n) === payloads.length;
  });
  return workflowId;
}

/** CLAIMERS workers, each on a connection of its own, claim at the same moment. */
async function raceToClaim(batch: number): Promise<ClaimedRun[]> {
  const claims = await Promise.all(Array.from({ length: CLAIMERS }, (_, index) => claimRuns(db, `racer-${index}/0`, batch, 60_000)));
  return claims.flat();
}

async function finish(runs: ClaimedRun[]): Promise<void> {
  if (runs.length === 0) return;
  await db
    .updateTable('walflow.workflow_runs')
    .set({ status: 'succeeded', finished_at: sql`now()`, locked_by: null, locked_until: null })
    .where('id', 'in', runs.map((run) => run.id))
    .execute();
}

async function runningOf(workflowId: string): Promise<number> {
  const row = await db
    .selectFrom('walflow.workflow_runs')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('workflow_id', '=', workflowId)
    .where('status', '=', 'running')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe('the claim', () => {
  it('never JIT-compiles or sorts the queue, whatever the statistics say (a claim compiled ~57 functions once the queue was analyzed)', async () => {
    const { rows } = await sql<{ config: string[] }>`
      SELECT proconfig AS config FROM pg_proc WHERE oid = 'walflow.claim_runs(text, integer, integer, text[], integer, boolean)'::regprocedure`.execute(db);
    expect(rows[0]?.config).toEqual(expect.arrayContaining(['enable_sort=off', 'jit=off']));
  });
});

describe('a workflow concurrency limit, enforced when runs are claimed', () => {
  it('lets exactly `limit` runs through however many workers claim at once, and the next ones when those finish', async () => {
    const workflowId = await queueRuns(
      'limit-two',
      { name: 'two-at-a-time', concurrency: { limit: 2 }, ordering: 'none', actions: [{ type: 'emit_event', event: 'job.done' }] },
      Array.from({ length: 30 }, (_, n) => ({ n })),
    );
    const seen = new Set<string>();
    for (let round = 0; round < 15; round++) {
      const claimed = await raceToClaim(2);
      expect(claimed).toHaveLength(2);
      expect(await runningOf(workflowId)).toBe(2);
      for (const run of claimed) seen.add(run.id);
      await finish(claimed);
    }
    expect(seen.size).toBe(30);
    expect(await raceToClaim(2)).toEqual([]);
  });

  it('applies the limit per key value, while different keys run side by side', async () => {
    const regions = ['eu', 'us', 'ap'];
    await queueRuns(
      'limit-per-key',
      { name: 'one-per-region', concurrency: { limit: 1, key: 'event.payload.region' }, ordering: 'none', actions: [{ type: 'emit_event', event: 'job.done' }] },
      Array.from({ length: 24 }, (_, n) => ({ n, region: regions[n % 3] })),
    );
    const { rows } = await sql<{ key: string; n: string }>`
      SELECT concurrency_key AS key, count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = 'limit-per-key' GROUP BY 1 ORDER BY 1`.execute(db);
    expect(rows).toEqual([
      { key: 'ap', n: '8' },
      { key: 'eu', n: '8' },
      { key: 'us', n: '8' },
    ]);
    for (let round = 0; round < 8; round++) {
      const claimed = await raceToClaim(3);
      expect(claimed.map((run) => run.event.payload.region).sort()).toEqual(['ap', 'eu', 'us']);
      await finish(claimed);
    }
    expect(await raceToClaim(3)).toEqual([]);
  });

  it('passes over a workflow at its limit, so the runs queued behind it are not held up', async () => {
    const limited = await queueRuns(
      'hol-limited',
      { name: 'one-at-a-time', concurrency: { limit: 1 }, ordering: 'none', actions: [{ type: 'emit_event', event: 'job.done' }] },
      Array.from({ length: 10 }, (_, n) => ({ n })),
    );
    const free = await queueRuns('hol-free', { name: 'unlimited', ordering: 'none', actions: [{ type: 'emit_event', event: 'job.done' }] }, [{ n: 0 }, { n: 1 }]);
    const first = await claimRuns(db, 'single/0', 1, 60_000);
    expect(first.map((run) => run.workflowId)).toEqual([limited]);
    const next = await claimRuns(db, 'single/0', 10, 60_000);
    expect(next.map((run) => run.workflowId)).toEqual([free, free]);
    expect(await runningOf(limited)).toBe(1);
    await finish([...first, ...next]);
    for (;;) {
      const claimed = await raceToClaim(1);
      if (claimed.length === 0) break;
      expect(claimed).toHaveLength(1);
      await finish(claimed);
    }
  });

  it('returns every run it claims with its event, and a run queued while it waited for a busy workflow to the next claim', async () => {
    const limited = await queueRuns('busy', { name: 'busy', concurrency: { limit: 1 }, ordering: 'none', actions: [{ type: 'emit_event', event: 'job.done' }] }, [{ n: 0 }]);
    await applyTestWorkflow(db, { tenant: 'late', name: 'late', ordering: 'none', trigger: { event: 'job.requested' }, actions: [{ type: 'emit_event', event: 'job.done' }] });
    let claiming: Promise<ClaimedRun[]> | undefined;
    // Another claimer of the limited workflow, as the test sees it: it holds the workflow's lock a while.
    await db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(30563, hashtext(${limited}::text || '/'))`.execute(trx);
      claiming = claimRuns(db, 'waiting/0', 2, 60_000);
      await waitFor('the claim to wait for the lock', async () => {
        const { rows } = await sql<{ waiting: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted) AS waiting`.execute(db);
        return rows[0]?.waiting;
      });
      // Committed after the claim's statement began, yet due before it (as a dispatcher's transaction that began
      // earlier): only the claim's later statements can see this run and its event.
      await queueRuns('late', { name: 'late', ordering: 'none', actions: [{ type: 'emit_event', event: 'job.done' }] }, [{ n: 1 }]);
      await sql`UPDATE walflow.workflow_runs SET next_attempt_at = now() - interval '1 minute' WHERE tenant_id = 'late'`.execute(db);
    });
    // One walk of the queue picks a claim's candidates: the run committed during the wait goes to the next claim.
    const claimed = [...(await claiming!), ...(await claimRuns(db, 'waiting/0', 2, 60_000))];
    expect(claimed.map((run) => run.event.tenantId)).toEqual(['busy', 'late']);
    expect(claimed.every((run) => run.event.committedAt !== undefined && run.event.type === 'job.requested')).toBe(true);
    const running = await db.selectFrom('walflow.workflow_runs').select('id').where('status', '=', 'running').execute();
    expect(running.map((run) => run.id).sort()).toEqual(claimed.map((run) => run.id).sort());
    await finish(claimed);
  });

  it('claims the runs of an aggregate known by its id alone one at a time, in commit order, however many workers claim', async () => {
    const tenant = 'id-only';
    await applyTestWorkflow(db, { tenant, name: 'in-order', trigger: { event: 'job.requested' }, actions: [{ type: 'emit_event', event: 'job.done' }] });
    // Two commits of two events each, for aggregate `a1` with no aggregate type; `a2` beside it.
    for (const batch of [[1, 2], [3, 4]]) {
      await emitMany(db, [...batch.map((n) => ({ type: 'job.requested', tenantId: tenant, aggregateId: 'a1', payload: { n } })), { type: 'job.requested', tenantId: tenant, aggregateId: 'a2', payload: { n: batch[0]! + 10 } }]);
    }
    await waitFor('six runs of id-only', async () => (await db.selectFrom('walflow.workflow_runs').select('id').where('tenant_id', '=', tenant).execute()).length === 6);
    const order: number[] = [];
    for (let round = 0; round < 4; round++) {
      const claimed = (await raceToClaim(10)).filter((run) => run.event.aggregateId === 'a1');
      expect(claimed).toHaveLength(1);
      order.push((claimed[0]!.event.payload as { n: number }).n);
      await finish(claimed);
    }
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('hands the runs of a stopping pool back to the queue, the interrupted attempt not counted', async () => {
    await queueRuns('release', { name: 'released', ordering: 'none', actions: [{ type: 'emit_event', event: 'job.done' }] }, [{ n: 0 }, { n: 1 }, { n: 2 }]);
    const stopping = [...(await claimRuns(db, 'pool-a/0', 1, 60_000)), ...(await claimRuns(db, 'pool-a/1', 1, 60_000))];
    const staying = await claimRuns(db, 'pool-b/0', 1, 60_000);
    expect(await releaseHeldRuns(db, 'pool-a')).toBe(2);
    const runs = await db.selectFrom('walflow.workflow_runs').select(['id', 'status', 'attempts', 'locked_by']).where('tenant_id', '=', 'release').execute();
    const byId = new Map(runs.map((run) => [run.id, run]));
    for (const run of stopping) expect(byId.get(run.id)).toMatchObject({ status: 'queued', attempts: 0, locked_by: null });
    expect(byId.get(staying[0]!.id)).toMatchObject({ status: 'running', attempts: 1, locked_by: 'pool-b/0' });
    await finish([...staying, ...(await claimRuns(db, 'pool-c/0', 5, 60_000))]);
  });
});
