import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WalflowDatabase } from '@walflow/core';
import { applyWorkflow, claimAndExecuteHeld, claimRuns, deleteWorkflow, Dispatcher, executeRun, setWorkflowStatus, releaseExpiredLeases, releaseHeldRuns, executeRunBatch, getWorkflowsById, WorkerPool, WorkflowCache, type ClaimedRun, type RunExecutorOptions } from '@walflow/executor';
import { computeHealth, createDatabase, migrate, retryDeadRun } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { Kysely, PostgresDialect, sql, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryId, type QueryResult, type RawBuilder, type RootOperationNode, type UnknownRow } from 'kysely';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, holdOpen, paymentEvent, silentLogger, testConfig, waitForLockWait } from './fixtures.js';
import { startProxy } from './tcp-proxy.js';
// Internals of the queue, to set up a claim that another worker changes between its rollback and its lease.
import { keepLease } from '../../executor/src/lease-keeper.js';
import { claimRunsToHold, failRun, leaseHeldRuns, recordOutcomes } from '../../executor/src/run-queue.js';
import { releaseStrandedRuns } from '../../executor/src/stranded-runs.js';

const database = useTestDatabase();
const policy = { updateFields: ['batch_test.accounts.balance'] };
let db: Kysely<WalflowDatabase>;
let options: RunExecutorOptions;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger, { max: 8 });
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  await sql`CREATE SCHEMA batch_test`.execute(db);
  await sql`CREATE TABLE batch_test.accounts (id text PRIMARY KEY, balance numeric NOT NULL DEFAULT 0)`.execute(db);
  options = {
    db,
    logger: silentLogger,
    runtime: { ...policy, secrets: new Map(), webhookAllowHosts: ['127.0.0.1'], webhookSigningSecret: `whsec_${Buffer.from('batch-test-secret-0123456789').toString('base64')}` },
  };
});
afterAll(async () => {
  await db.destroy();
});

/** Records the events as the stream would, and claims their runs for one worker. */
async function queueAndClaim(tenant: string, payloads: Record<string, unknown>[], workerId: string): Promise<ClaimedRun[]> {
  await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: payloads.map((payload) => paymentEvent(tenant, payload)), parked: [], checkpoint: null });
  const claimed = await claimRuns(db, workerId, 100, 60_000);
  return claimed.filter((run) => run.event.tenantId === tenant);
}

async function executeClaimed(runs: ClaimedRun[], workerId: string) {
  const workflows = await getWorkflowsById(db, [...new Set(runs.map((run) => run.workflowId))]);
  return executeRunBatch(runs, workflows, workerId, options);
}

async function notificationsPerRun(tenant: string): Promise<Map<string, number>> {
  const rows = await db.selectFrom('walflow.notifications').select(['run_id', sql<string>`count(*)`.as('n')]).where('tenant_id', '=', tenant).groupBy('run_id').execute();
  return new Map(rows.map((row) => [row.run_id as string, Number(row.n)]));
}

describe('a claimed batch of database-only runs', () => {
  it('executes in one transaction, one effect and one outcome per run', async () => {
    await applyTestWorkflow(db, { tenant: 'together', name: 'notify', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid {{event.payload.n}}' }] });
    const runs = await queueAndClaim('together', Array.from({ length: 20 }, (_, n) => ({ n })), 'together/0');
    expect(runs).toHaveLength(20);
    const results = await executeClaimed(runs, 'together/0');
    expect([...results.values()]).toEqual(Array(20).fill('succeeded'));
    const perRun = await notificationsPerRun('together');
    expect(perRun.size).toBe(20);
    expect([...perRun.values()].every((n) => n === 1)).toBe(true);
    // Every effect was written by the same transaction.
    const { rows } = await sql<{ transactions: string }>`
      SELECT count(DISTINCT xmin::text) AS transactions FROM walflow.notifications WHERE tenant_id = 'together'`.execute(db);
    expect(rows[0]?.transactions).toBe('1');
    const statuses = await db.selectFrom('walflow.workflow_runs').select('status').where('tenant_id', '=', 'together').execute();
    expect(statuses.every((row) => row.status === 'succeeded')).toBe(true);
  });

  it('emits an event without an aggregate for a triggering event whose aggregate the outbox refuses today (empty, or recorded before its limit)', async () => {
    await applyTestWorkflow(db, { tenant: 'odd-aggregate', name: 'echo', trigger: { event: 'payment.received' }, actions: [{ type: 'emit_event', event: 'payment.echoed' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({
      events: [
        { ...paymentEvent('odd-aggregate', { n: 1 }), aggregateType: '', aggregateId: '' },
        { ...paymentEvent('odd-aggregate', { n: 2 }), aggregateType: 'payment', aggregateId: 'x'.repeat(1500) },
      ],
      parked: [],
      checkpoint: null,
    });
    const runs = (await claimRuns(db, 'odd-aggregate/0', 100, 60_000)).filter((run) => run.event.tenantId === 'odd-aggregate');
    expect([...(await executeClaimed(runs, 'odd-aggregate/0')).values()]).toEqual(['succeeded', 'succeeded']);
    const echoed = await db.selectFrom('walflow.outbox').select(['aggregate_type', 'aggregate_id']).where('tenant_id', '=', 'odd-aggregate').orderBy('aggregate_type').execute();
    expect(echoed).toEqual([
      { aggregate_type: 'payment', aggregate_id: null },
      { aggregate_type: null, aggregate_id: null },
    ]);
  });

  it('writes no field the executing process does not allow: a target taken off the list after the apply fails the run, saying so', async () => {
    await applyTestWorkflow(
      db,
      {
        tenant: 'revoked',
        name: 'credit',
        trigger: { event: 'payment.received' },
        retry: { maxAttempts: 1 },
        actions: [{ type: 'update_field', table: 'batch_test.accounts', column: 'balance', key: { column: 'id', value: 'r1' }, increment: 1 }],
      },
      policy,
    );
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('r1')`.execute(db);
    const runs = await queueAndClaim('revoked', [{ n: 1 }], 'revoked/0');
    const workflows = await getWorkflowsById(db, [runs[0]!.workflowId]);
    const revoked = { ...options, runtime: { ...options.runtime, updateFields: [] } };
    expect(await executeRunBatch(runs, workflows, 'revoked/0', revoked)).toEqual(new Map([[runs[0]!.id, 'dead']]));
    const run = await db.selectFrom('walflow.workflow_runs').select(['status', 'last_error']).where('id', '=', runs[0]!.id).executeTakeFirstOrThrow();
    expect(run).toEqual({ status: 'dead', last_error: expect.stringContaining('may not write batch_test.accounts.balance') });
    const { rows } = await sql<{ balance: string }>`SELECT balance::text FROM batch_test.accounts WHERE id = 'r1'`.execute(db);
    expect(rows).toEqual([{ balance: '0' }]);
    await sql`DELETE FROM batch_test.accounts WHERE id = 'r1'`.execute(db);
  });

  it('runs the table\'s triggers with the search path walflow\'s session started with, then takes its own back', async () => {
    // In public, named without it: the trigger is written for the application's search path, and sets it too.
    await sql`CREATE TABLE public.trigger_calls (account text)`.execute(db);
    await sql`
      CREATE FUNCTION batch_test.note_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO trigger_calls VALUES (NEW.id);
        SET search_path = public;
        RETURN NEW;
      END $$`.execute(db);
    await sql`CREATE TRIGGER note_update BEFORE UPDATE ON batch_test.accounts FOR EACH ROW EXECUTE FUNCTION batch_test.note_update()`.execute(db);
    try {
      await applyTestWorkflow(
        db,
        { tenant: 'triggered', name: 'credit', trigger: { event: 'payment.received' }, actions: [{ type: 'update_field', table: 'batch_test.accounts', column: 'balance', key: { column: 'id', value: 't1' }, increment: 1 }] },
        policy,
      );
      await sql`INSERT INTO batch_test.accounts (id) VALUES ('t1')`.execute(db);
      const runs = await queueAndClaim('triggered', [{ n: 1 }], 'triggered/0');
      // One connection, to see what the run leaves it with.
      const own = createDatabase(database.url, silentLogger, { max: 1 });
      try {
        const workflows = await getWorkflowsById(own, [runs[0]!.workflowId]);
        expect(await executeRunBatch(runs, workflows, 'triggered/0', { ...options, db: own })).toEqual(new Map([[runs[0]!.id, 'succeeded']]));
        const { rows: [path] } = await sql<{ search_path: string }>`SHOW search_path`.execute(own);
        expect(path).toEqual({ search_path: 'pg_catalog, pg_temp' });
      } finally {
        await own.destroy();
      }
      const { rows } = await sql<{ account: string }>`SELECT account FROM public.trigger_calls`.execute(db);
      expect(rows).toEqual([{ account: 't1' }]);
    } finally {
      await sql`DROP TRIGGER note_update ON batch_test.accounts`.execute(db);
      await sql`DELETE FROM batch_test.accounts WHERE id = 't1'`.execute(db);
    }
  });

  it('falls back to one run at a time when one run fails: the others succeed once, the failing one retries alone', async () => {
    await applyTestWorkflow(
      db,
      {
        tenant: 'mixed',
        name: 'credit',
        trigger: { event: 'payment.received' },
        actions: [
          { type: 'create_notification', recipient: 'u1', title: 'paid {{event.payload.account}}' },
          { type: 'update_field', table: 'batch_test.accounts', column: 'balance', key: { column: 'id', value: '{{event.payload.account}}' }, increment: '{{event.payload.amount}}' },
        ],
      },
      policy,
    );
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('a1'), ('a2'), ('a3')`.execute(db);
    const runs = await queueAndClaim('mixed', [{ account: 'a1', amount: 1 }, { account: 'missing', amount: 5 }, { account: 'a2', amount: 2 }, { account: 'a3', amount: 3 }], 'mixed/0');
    const failing = runs.find((run) => run.event.payload.account === 'missing')!;
    const results = await executeClaimed(runs, 'mixed/0');
    expect(results.get(failing.id)).toBe('retrying');
    expect([...results.entries()].filter(([id]) => id !== failing.id).map(([, result]) => result)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const balances = await sql<{ id: string; balance: string }>`SELECT id, balance::text FROM batch_test.accounts ORDER BY id`.execute(db);
    expect(balances.rows).toEqual([{ id: 'a1', balance: '1' }, { id: 'a2', balance: '2' }, { id: 'a3', balance: '3' }]);
    // The failing run's first action committed on its own; its retry, in a batch, must not repeat it.
    expect([...(await notificationsPerRun('mixed')).values()]).toEqual([1, 1, 1, 1]);

    await sql`INSERT INTO batch_test.accounts (id) VALUES ('missing')`.execute(db);
    await db.updateTable('walflow.workflow_runs').set({ next_attempt_at: sql`now()` }).where('id', '=', failing.id).execute();
    const retry = await claimRuns(db, 'mixed/1', 10, 60_000);
    expect(retry.map((run) => run.id)).toEqual([failing.id]);
    expect(await executeClaimed(retry, 'mixed/1')).toEqual(new Map([[failing.id, 'succeeded']]));
    expect([...(await notificationsPerRun('mixed')).values()]).toEqual([1, 1, 1, 1]);
    // The retry ran in the batch transaction (its effect and its completion share one xmin), not in the fallback.
    const missing = await sql<{ balance: string; together: boolean }>`
      SELECT a.balance::text, a.xmin::text = r.xmin::text AS together
        FROM batch_test.accounts a, walflow.workflow_runs r WHERE a.id = 'missing' AND r.id = ${failing.id}`.execute(db);
    expect(missing.rows[0]).toEqual({ balance: '5', together: true });
  });

  it('leaves alone a run another worker took over, and cancels the runs of a disabled workflow', async () => {
    const workflowId = await applyTestWorkflow(db, { tenant: 'fenced', name: 'notify', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'x' }] });
    const runs = await queueAndClaim('fenced', [{ n: 1 }, { n: 2 }, { n: 3 }], 'fenced/0');
    const takenOver = runs[1]!;
    await db.updateTable('walflow.workflow_runs').set({ locked_by: 'elsewhere/0' }).where('id', '=', takenOver.id).execute();
    const results = await executeClaimed(runs, 'fenced/0');
    expect(results.get(takenOver.id)).toBe('lease_lost');
    expect([...(await notificationsPerRun('fenced')).keys()].sort()).toEqual([runs[0]!.id, runs[2]!.id].sort());

    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('fenced', { n: 4 })], parked: [], checkpoint: null });
    await db.updateTable('walflow.workflows').set({ status: 'disabled' }).where('id', '=', workflowId).execute();
    const later = (await claimRuns(db, 'fenced/1', 10, 60_000)).filter((run) => run.event.tenantId === 'fenced');
    expect(await executeClaimed(later, 'fenced/1')).toEqual(new Map([[later[0]!.id, 'cancelled']]));
    expect((await notificationsPerRun('fenced')).size).toBe(2);
  });
});

describe('the queued runs of a paused workflow', () => {
  it('wait while it is paused, by hand or after its deaths, and are claimed once it is resumed', async () => {
    await applyTestWorkflow(
      db,
      {
        tenant: 'paused',
        name: 'credit',
        trigger: { event: 'payment.received' },
        retry: { maxAttempts: 1 },
        autoPause: { afterConsecutiveFailures: 1 },
        actions: [{ type: 'update_field', table: 'batch_test.accounts', column: 'balance', key: { column: 'id', value: 'nobody' }, increment: 1 }],
      },
      policy,
    );
    const [first] = await queueAndClaim('paused', [{ n: 1 }], 'paused/0');
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [2, 3].map((n) => paymentEvent('paused', { n })), parked: [], checkpoint: null });
    // The first run dies, and the workflow pauses itself: the two queued behind it wait.
    expect(await executeRun(first!, 'paused/0', options)).toBe('dead');
    expect(await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 'paused').executeTakeFirstOrThrow()).toEqual({ status: 'paused' });
    const claimable = async () => (await claimRuns(db, 'paused/1', 100, 60_000)).filter((run) => run.event.tenantId === 'paused');
    expect(await claimable()).toEqual([]);
    // A run queued while it is paused (an operator's retry) waits too, and is no backlog of the workers'.
    await retryDeadRun(db, first!.id);
    expect(await claimable()).toEqual([]);
    await db.updateTable('walflow.workflow_runs').set({ next_attempt_at: sql`now() - interval '1 hour'` }).where('id', '=', first!.id).execute();
    const health = await computeHealth(db, { slotName: database.slotName, thresholds: testConfig(database.url, database.slotName).healthThresholds });
    expect(health.checks.find((check) => check.name === 'oldest_queued_run')?.message).not.toMatch(/waits \d{4,}/);

    // Resuming wakes the workers of every process, as queuing runs does.
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    try {
      let notified = 0;
      listener.on('notification', () => notified++);
      await listener.query('LISTEN walflow_runs_queued');
      expect(await setWorkflowStatus(db, 'paused', 'credit', 'active')).toBe('changed');
      await waitFor('the resume to notify the workers', () => notified > 0, { timeoutMs: 5_000 });
    } finally {
      await listener.end();
    }
    const resumed = await claimable();
    expect(resumed).toHaveLength(3);
    // Handed back while it is paused again, they wait; deleted while paused, it leaves them to be cancelled.
    expect(await setWorkflowStatus(db, 'paused', 'credit', 'paused')).toBe('changed');
    expect(await releaseHeldRuns(db, 'paused')).toBe(3);
    expect(await claimable()).toEqual([]);
    // Out of the due range, so that no claim reads past them.
    const waiting = await sql<{ n: number }>`SELECT count(*)::int AS n FROM walflow.workflow_runs WHERE tenant_id = 'paused' AND next_attempt_at = 'infinity'`.execute(db);
    expect(waiting.rows[0]!.n).toBe(3);
    expect(await deleteWorkflow(db, 'paused', 'credit')).toBe(true);
    const orphans = await claimAndExecuteHeld({ workerId: 'paused/2', limit: 100, leaseMs: 60_000, callingOut: { actionTypes: [], maxCallingOut: 1 }, workflows: new WorkflowCache(), onClaimed: () => undefined }, options);
    expect(orphans.claimed).toBeGreaterThanOrEqual(3);
    const runs = await db.selectFrom('walflow.workflow_runs').select(['status', 'last_error']).where('tenant_id', '=', 'paused').execute();
    expect(runs).toEqual(Array.from({ length: 3 }, () => ({ status: 'cancelled', last_error: 'workflow was deleted' })));
  });
});

describe('a leased run whose workflow is paused before its turn', () => {
  it('is not executed: it waits for the resume, its attempt not counted', async () => {
    await applyTestWorkflow(db, { tenant: 'paused-late', name: 'note', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid' }] });
    // A worker holds both runs (a batch leased after a rollback, run one by one); the first pauses the workflow.
    const [first, second] = await queueAndClaim('paused-late', [{ n: 1 }, { n: 2 }], 'paused-late/0');
    expect(await executeRun(first!, 'paused-late/0', options)).toBe('succeeded');
    expect(await setWorkflowStatus(db, 'paused-late', 'note', 'paused')).toBe('changed');
    expect(await executeRun(second!, 'paused-late/0', options)).toBe('held');
    const row = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts', 'locked_by', sql<boolean>`next_attempt_at = 'infinity'`.as('waits')]).where('id', '=', second!.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'queued', attempts: 0, locked_by: null, waits: true });
    expect(await notificationsPerRun('paused-late')).toEqual(new Map([[first!.id, 1]]));

    expect(await setWorkflowStatus(db, 'paused-late', 'note', 'active')).toBe('changed');
    const [again] = (await claimRuns(db, 'paused-late/1', 100, 60_000)).filter((run) => run.event.tenantId === 'paused-late');
    expect(again?.id).toBe(second!.id);
    expect(await executeRun(again!, 'paused-late/1', options)).toBe('succeeded');
  });

  it('is not executed with others in one transaction either', async () => {
    await applyTestWorkflow(db, { tenant: 'paused-together', name: 'note', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid' }] });
    const leased = await queueAndClaim('paused-together', [{ n: 1 }, { n: 2 }], 'paused-together/0');
    expect(await setWorkflowStatus(db, 'paused-together', 'note', 'paused')).toBe('changed');
    const results = await executeClaimed(leased, 'paused-together/0');
    expect([...results.values()]).toEqual(['held', 'held']);
    expect(await notificationsPerRun('paused-together')).toEqual(new Map());
    const rows = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts']).where('tenant_id', '=', 'paused-together').execute();
    expect(rows).toEqual([{ status: 'queued', attempts: 0 }, { status: 'queued', attempts: 0 }]);
  });
});

describe('a run queued again while its workflow is paused, whose resume commits first', () => {
  it('is made due by the workers’ sweep and runs, although the resume could not see it queued', async () => {
    await applyTestWorkflow(db, { tenant: 'stranded', name: 'note', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid' }] });
    const [run] = await queueAndClaim('stranded', [{ n: 1 }], 'stranded/0');
    expect(await setWorkflowStatus(db, 'stranded', 'note', 'paused')).toBe('changed');
    // The run's worker hands it back (a retry, a lease run out), in a transaction the resume commits before: the
    // run's trigger sees the workflow paused and moves it out of the due range.
    const requeue = await holdOpen(
      db,
      sql`UPDATE walflow.workflow_runs SET status = 'queued', locked_by = NULL, locked_until = NULL WHERE id = ${run!.id}`,
      { commit: true },
    );
    expect(await setWorkflowStatus(db, 'stranded', 'note', 'active')).toBe('changed');
    await requeue.release();
    const { rows } = await sql<{ due: boolean }>`SELECT next_attempt_at <= now() AS due FROM walflow.workflow_runs WHERE id = ${run!.id}`.execute(db);
    expect(rows).toEqual([{ due: false }]);

    const pool = new WorkerPool({ db, logger: silentLogger, concurrency: 1, leaseMs: 60_000, pollIntervalMs: 50, runtime: options.runtime });
    pool.start();
    try {
      await waitFor('the stranded run to succeed', async () => {
        const row = await db.selectFrom('walflow.workflow_runs').select('status').where('id', '=', run!.id).executeTakeFirstOrThrow();
        return row.status === 'succeeded';
      }, { timeoutMs: 10_000 });
    } finally {
      await pool.stop();
    }
  });
});

describe('runs that call out (mail, HTTP)', () => {
  let http: Server;
  let port: number;
  /** For each request: runs of the tenant still waiting in the worker's hands with an expired lease. */
  const expiredWhileWaiting: number[] = [];

  beforeAll(async () => {
    http = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        void sql<{ n: string }>`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = 'slow' AND status = 'running' AND locked_until < now()`
          .execute(db)
          .then(({ rows }) => expiredWhileWaiting.push(Number(rows[0]?.n)))
          .then(() => setTimeout(() => response.writeHead(204).end(), 400));
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    port = (http.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  it('are claimed one per claim beside the database-only runs, so none waits in a worker with its lease running out', async () => {
    await applyTestWorkflow(db, { tenant: 'slow', name: 'call', trigger: { event: 'payment.received' }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/slow` }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [1, 2, 3, 4].map((n) => paymentEvent('slow', { n })), parked: [], checkpoint: null });
    const claim = await claimRuns(db, 'slow/peek', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 });
    expect(claim.filter((run) => run.event.tenantId === 'slow')).toHaveLength(1);
    await sql`UPDATE walflow.workflow_runs SET status = 'queued', attempts = 0, locked_by = NULL, locked_until = NULL WHERE locked_by = 'slow/peek'`.execute(db);
    const pool = new WorkerPool({ db, logger: silentLogger, concurrency: 1, claimBatchSize: 10, leaseMs: 700, pollIntervalMs: 50, runtime: options.runtime });
    pool.start();
    try {
      await waitFor('the slow runs to succeed', async () => {
        const rows = await db.selectFrom('walflow.workflow_runs').select(['status', 'last_error']).where('tenant_id', '=', 'slow').execute();
        return rows.length === 4 && rows.every((row) => row.status === 'succeeded') ? rows : undefined;
      }, { timeoutMs: 30_000 });
    } finally {
      await pool.stop();
    }
    expect(expiredWhileWaiting).toEqual([0, 0, 0, 0]);
    const attempts = await db.selectFrom('walflow.workflow_runs').select('attempts').where('tenant_id', '=', 'slow').execute();
    expect(attempts.every((row) => row.attempts === 1)).toBe(true);
  });
});

/**
 * Lets `passing` reads of walflow.workflows through, then loses the answer of the next one, as a connection that
 * drops after the statement ran would.
 */
class LostWorkflowRead implements KyselyPlugin {
  private readonly failing = new Set<QueryId>();

  constructor(private passing: number) {}

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    if (node.kind === 'SelectQueryNode' && JSON.stringify(node.from).includes('"workflows"') && this.passing-- === 0) this.failing.add(queryId);
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.failing.delete(queryId)) throw new Error('Connection terminated unexpectedly (injected)');
    return Promise.resolve(result);
  }
}

/** Holds back the answer of the next claim until released: the runs queued meanwhile were not in its reading. */
class HeldClaimAnswer implements KyselyPlugin {
  private held: QueryId | undefined;
  private answered!: () => void;
  private release!: () => void;
  /** Resolves once the claim has been answered, its answer held here. */
  readonly claimAnswered = new Promise<void>((resolve) => (this.answered = resolve));
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    if (this.held === undefined && JSON.stringify(node).includes('walflow.claim_runs')) this.held = queryId;
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (queryId === this.held) {
      this.answered();
      await this.released;
    }
    return result;
  }

  releaseAnswer(): void {
    this.release();
  }
}

describe('the sweep of stranded runs beside a pause', () => {
  it('waits for a pause in progress and leaves the run out of the due range', async () => {
    await applyTestWorkflow(db, { tenant: 'stranded-pause', name: 'note', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('stranded-pause', { n: 1 })], parked: [], checkpoint: null });
    // A run stranded out of the due range under an active workflow, as a resume racing its requeue leaves one.
    await sql`UPDATE walflow.workflow_runs SET next_attempt_at = 'infinity' WHERE tenant_id = 'stranded-pause'`.execute(db);
    const pause = await holdOpen(db, sql`UPDATE walflow.workflows SET status = 'paused' WHERE tenant_id = 'stranded-pause'`, { commit: true });
    const sweep = releaseStrandedRuns(db);
    await waitForLockWait(db, 'the sweep to wait for the pause', '%walflow.workflow_runs r SET next_attempt_at%');
    await pause.release();
    expect(await sweep).toBe(0);
    const { rows } = await sql<{ held: boolean }>`SELECT next_attempt_at = 'infinity' AS held FROM walflow.workflow_runs WHERE tenant_id = 'stranded-pause'`.execute(db);
    expect(rows).toEqual([{ held: true }]);
    await sql`UPDATE walflow.workflow_runs SET status = 'cancelled' WHERE tenant_id = 'stranded-pause'`.execute(db);
  });
});

describe('runs queued while the only worker’s claim is on its way back empty', () => {
  it('are claimed at once, not after a poll: the wake-up that found no idle worker is not lost', async () => {
    await applyTestWorkflow(db, { tenant: 'missed-wake', name: 'note', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid' }] });
    const held = new HeldClaimAnswer();
    // Polling once a minute: within the test, only a wake-up claims.
    const pool = new WorkerPool({ db: db.withPlugin(held), logger: silentLogger, concurrency: 1, leaseMs: 60_000, pollIntervalMs: 60_000, runtime: options.runtime });
    pool.start();
    try {
      await held.claimAnswered;
      await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('missed-wake', { n: 1 })], parked: [], checkpoint: null });
      pool.notify(1);
      held.releaseAnswer();
      await waitFor('the run to succeed', async () => {
        const row = await db.selectFrom('walflow.workflow_runs').select('status').where('tenant_id', '=', 'missed-wake').executeTakeFirst();
        return row?.status === 'succeeded';
      }, { timeoutMs: 10_000 });
    } finally {
      held.releaseAnswer();
      await pool.stop();
    }
  });
});

describe('runs a claim leased to a worker whose next read fails', () => {
  it('are executed once the database answers again, not left to their leases with an attempt counted', async () => {
    await applyTestWorkflow(db, { tenant: 'read-lost', name: 'limited', trigger: { event: 'payment.received' }, concurrency: { limit: 1 }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('read-lost', { n: 1 })], parked: [], checkpoint: null });
    // The pool's read of the leased run's workflow, right after the claim committed, is lost.
    const pool = new WorkerPool({ db: db.withPlugin(new LostWorkflowRead(0)), logger: silentLogger, concurrency: 1, leaseMs: 60_000, pollIntervalMs: 50, runtime: options.runtime });
    pool.start();
    try {
      const run = await waitFor('the run to succeed', async () => {
        const row = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts']).where('tenant_id', '=', 'read-lost').executeTakeFirst();
        return row?.status === 'succeeded' && row;
      }, { timeoutMs: 10_000 });
      expect(run.attempts).toBe(1);
    } finally {
      await pool.stop();
    }
  });
});

describe('a run whose actions take longer than its lease', () => {
  let http: Server;
  let port: number;
  /** Requests received, by path: each action's webhook must arrive once. */
  const deliveries = new Map<string, number>();

  beforeAll(async () => {
    http = createServer((request, response) => {
      request.resume();
      deliveries.set(request.url ?? '', (deliveries.get(request.url ?? '') ?? 0) + 1);
      setTimeout(() => response.writeHead(204).end(), 400);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    port = (http.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  it('keeps its lease while its worker executes it: no other worker takes it over, each action is performed once', async () => {
    // Three webhooks of 400 ms each: 1.2 s of work under a lease of 300 ms, swept by a second pool every 150 ms.
    await applyTestWorkflow(db, {
      tenant: 'long',
      name: 'three-calls',
      trigger: { event: 'payment.received' },
      retry: { maxAttempts: 2 },
      actions: ['a', 'b', 'c'].map((path) => ({ type: 'webhook' as const, url: `http://127.0.0.1:${port}/${path}` })),
    });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('long', { n: 1 })], parked: [], checkpoint: null });
    const pools = [1, 2].map(() => new WorkerPool({ db, logger: silentLogger, concurrency: 1, leaseMs: 300, pollIntervalMs: 50, runtime: options.runtime }));
    for (const pool of pools) pool.start();
    try {
      await waitFor('the run to finish', async () => {
        const run = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts', 'last_error']).where('tenant_id', '=', 'long').executeTakeFirst();
        return run?.status === 'succeeded' || run?.status === 'dead' ? run : undefined;
      }, { timeoutMs: 20_000 });
    } finally {
      await Promise.all(pools.map((pool) => pool.stop()));
    }
    const run = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts']).where('tenant_id', '=', 'long').executeTakeFirstOrThrow();
    expect(run).toEqual({ status: 'succeeded', attempts: 1 });
    expect(Object.fromEntries(deliveries)).toEqual({ '/a': 1, '/b': 1, '/c': 1 });
  });
});

describe('a worker pool whose shutdown grace is over', () => {
  it('stops the call in flight, recording nothing, before it hands the run back', async () => {
    const closedEarly: string[] = [];
    const slow = createServer((request, response) => {
      request.resume();
      const answer = setTimeout(() => response.writeHead(204).end(), 10_000);
      response.on('close', () => {
        clearTimeout(answer);
        if (!response.writableEnded) closedEarly.push(request.url ?? '');
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (slow.address() as AddressInfo).port;
      await applyTestWorkflow(db, { tenant: 'shutdown', name: 'slow-call', trigger: { event: 'payment.received' }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/slow` }] });
      await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('shutdown', { n: 1 })], parked: [], checkpoint: null });
      const pool = new WorkerPool({ db, logger: silentLogger, concurrency: 1, pollIntervalMs: 50, runtime: options.runtime });
      pool.start();
      await waitFor('the call to be in flight', async () => (await db.selectFrom('walflow.workflow_runs').select('status').where('tenant_id', '=', 'shutdown').executeTakeFirst())?.status === 'running');
      await sleep(100);
      await pool.stop(200);
      // Stopped, not left calling out while another worker takes the run over and calls again.
      expect(closedEarly).toEqual(['/slow']);
      const run = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts', 'locked_by', 'last_error']).where('tenant_id', '=', 'shutdown').executeTakeFirstOrThrow();
      expect(run).toEqual({ status: 'queued', attempts: 0, locked_by: null, last_error: 'released by a worker that shut down' });
      expect(await db.selectFrom('walflow.action_outcomes as o').innerJoin('walflow.workflow_runs as r', 'r.id', 'o.run_id').select('o.status').where('r.tenant_id', '=', 'shutdown').execute()).toEqual([]);
      await sql`UPDATE walflow.workflow_runs SET status = 'cancelled' WHERE tenant_id = 'shutdown'`.execute(db);
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });
});

describe('a worker pool whose shutdown grace is over while an action waits for a lock', () => {
  /** A run whose first action waits for a row the test holds for `holdMs` after the stop begins. */
  async function stopWhileLocked(tenant: string, holdMs: number, runtime: RunExecutorOptions['runtime']) {
    await sql`INSERT INTO batch_test.accounts (id) VALUES (${tenant})`.execute(db);
    const actions = [
      { type: 'update_field' as const, table: 'batch_test.accounts', column: 'balance', key: { column: 'id', value: tenant }, increment: 1 },
      { type: 'webhook' as const, url: 'http://127.0.0.1:9/never' },
    ];
    await applyTestWorkflow(db, { tenant, name: 'credit-then-call', trigger: { event: 'payment.received' }, actions }, policy);
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
      await locker.query(`BEGIN; SELECT * FROM batch_test.accounts WHERE id = '${tenant}' FOR UPDATE`);
      await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent(tenant, { n: 1 })], parked: [], checkpoint: null });
      const poolDb = createDatabase(database.url, silentLogger, { max: 4 });
      const pool = new WorkerPool({ db: poolDb, logger: silentLogger, concurrency: 1, leaseMs: 60_000, pollIntervalMs: 50, runtime });
      pool.start();
      await waitFor('the update to wait for the row', async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%accounts%'`.execute(db);
        return rows[0]!.n > 0;
      });
      // The grace ends, the hand-back passes the run over (its outcome is being written).
      const stopped = pool.stop(100);
      await sleep(holdMs);
      await locker.query('COMMIT');
      await stopped;
      await poolDb.destroy();
      return await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts', 'locked_by']).where('tenant_id', '=', tenant).executeTakeFirstOrThrow();
    } finally {
      await locker.end();
      await sql`UPDATE walflow.workflow_runs SET status = 'cancelled' WHERE tenant_id = ${tenant} AND status IN ('queued', 'running')`.execute(db);
    }
  }

  it('waits for that action’s transaction, then hands the run back before its connections close', async () => {
    expect(await stopWhileLocked('locked-stop', 1_500, options.runtime)).toEqual({ status: 'queued', attempts: 0, locked_by: null });
  });

  it('hands the run back, its attempt not counted, when the lock outlasts the action timeout', async () => {
    expect(await stopWhileLocked('locked-past-timeout', 3_000, { ...options.runtime, actionTimeoutMs: 1_000 })).toEqual({ status: 'queued', attempts: 0, locked_by: null });
  });
});

describe('a worker pool whose shutdown grace is over while a held batch still runs', () => {
  it('hands back, as that batch commits, the run its claim leased, its attempt uncounted, the pool’s connections closed', async () => {
    await applyTestWorkflow(db, { tenant: 'late-lease', name: 'note', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'paid' }] });
    await applyTestWorkflow(db, { tenant: 'late-lease', name: 'call', trigger: { event: 'payment.received' }, actions: [{ type: 'webhook', url: 'http://127.0.0.1:9/never' }] });
    // The database-only run's batch outlasts the grace; the same claim leased the run that calls out.
    await sql`CREATE FUNCTION public.slow_late_lease() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$`.execute(db);
    await sql`CREATE TRIGGER slow_late_lease BEFORE INSERT ON walflow.notifications FOR EACH ROW WHEN (NEW.tenant_id = 'late-lease') EXECUTE FUNCTION public.slow_late_lease()`.execute(db);
    try {
      await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('late-lease', { n: 1 })], parked: [], checkpoint: null });
      // The pool's own connections, closed once it has stopped, as walflow start closes them.
      const poolDb = createDatabase(database.url, silentLogger, { max: 4 });
      const pool = new WorkerPool({ db: poolDb, logger: silentLogger, concurrency: 1, leaseMs: 60_000, pollIntervalMs: 50, runtime: options.runtime });
      pool.start();
      await waitFor('the held batch to be under way', async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`.execute(db);
        return rows[0]!.n > 0;
      });
      // The grace ends, and stop() hands back what it sees, before the held batch commits its claim.
      await pool.stop(50);
      await poolDb.destroy();
      const run = async (name: string) =>
        db.selectFrom('walflow.workflow_runs as r').innerJoin('walflow.workflows as w', 'w.id', 'r.workflow_id')
          .select(['r.status', 'r.attempts', 'r.locked_by']).where('r.tenant_id', '=', 'late-lease').where('w.name', '=', name).executeTakeFirstOrThrow();
      // The held batch committed, and with it handed back the run that calls out its claim had leased.
      expect(await run('note')).toMatchObject({ status: 'succeeded' });
      expect(await run('call')).toEqual({ status: 'queued', attempts: 0, locked_by: null });
    } finally {
      await sql`DROP TRIGGER slow_late_lease ON walflow.notifications`.execute(db);
      await sql`DROP FUNCTION public.slow_late_lease()`.execute(db);
      await sql`UPDATE walflow.workflow_runs SET status = 'cancelled' WHERE tenant_id = 'late-lease' AND status IN ('queued', 'running')`.execute(db);
    }
  });
});

describe('a lease that runs out', () => {
  it('queues the run again, or on its last attempt ends it dead and finished', async () => {
    await applyTestWorkflow(db, { tenant: 'expiring', name: 'call', trigger: { event: 'payment.received' }, retry: { maxAttempts: 2 }, actions: [{ type: 'webhook', url: 'http://127.0.0.1:9/never' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('expiring', { n: 1 })], parked: [], checkpoint: null });
    const state = () => db.selectFrom('walflow.workflow_runs').select(['status', 'attempts', 'last_error']).select(sql<boolean>`finished_at IS NOT NULL`.as('finished')).where('tenant_id', '=', 'expiring').executeTakeFirstOrThrow();
    for (const attempts of [1, 2]) {
      const claimed = (await claimRuns(db, 'expiring/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 })).filter((run) => run.event.tenantId === 'expiring');
      expect(claimed).toHaveLength(1);
      // The worker died: its lease ran out. The error of an attempt before is not this attempt's.
      await sql`UPDATE walflow.workflow_runs SET locked_until = now() - interval '1 second', last_error = 'an earlier attempt failed' WHERE tenant_id = 'expiring'`.execute(db);
      expect(await releaseExpiredLeases(db, silentLogger)).toBeGreaterThanOrEqual(1);
      expect(await state()).toEqual(
        attempts === 1
          ? { status: 'queued', attempts: 1, last_error: 'worker lease expired', finished: false }
          : { status: 'dead', attempts: 2, last_error: 'worker lease expired', finished: true },
      );
    }
  });

  it('counts a death by lease expiry as any other: the workflow pauses at its threshold and a run that died on send_email emits email.failed', async () => {
    const workflowId = await applyTestWorkflow(db, {
      tenant: 'expiring-mail',
      name: 'note-then-mail',
      trigger: { event: 'payment.received' },
      retry: { maxAttempts: 1 },
      autoPause: { afterConsecutiveFailures: 2 },
      actions: [
        { type: 'create_notification', recipient: 'u1', title: 'paid' },
        { type: 'send_email', to: 'ops@example.com', subject: 'paid', text: 'paid' },
      ],
    });
    const dispatcher = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    // The first event's aggregate is empty, as SQL writers may store it: its follow-up has none.
    await dispatcher.dispatch({ events: [1, 2].map((n) => ({ ...paymentEvent('expiring-mail', { n }), aggregateType: 'payment', aggregateId: n === 1 ? '' : `p${n}` })), parked: [], checkpoint: null });
    const claimed = (await claimRuns(db, 'expiring-mail/0', 10, 60_000)).filter((run) => run.event.tenantId === 'expiring-mail');
    expect(claimed).toHaveLength(2);
    // The worker performed the first run's notification, then died with both runs in hand.
    await db.transaction().execute((trx) => recordOutcomes(trx, [{ runId: claimed[0]!.id, actionIndex: 0, actionType: 'create_notification', status: 'succeeded' }]));
    await sql`UPDATE walflow.workflow_runs SET locked_until = now() - interval '1 second' WHERE tenant_id = 'expiring-mail'`.execute(db);
    expect(await releaseExpiredLeases(db, silentLogger)).toBeGreaterThanOrEqual(2);

    const runs = await db.selectFrom('walflow.workflow_runs').select(['id', 'status']).where('tenant_id', '=', 'expiring-mail').execute();
    expect(runs.map((run) => run.status)).toEqual(['dead', 'dead']);
    const workflow = await db.selectFrom('walflow.workflows').select(['status', 'paused_reason', 'consecutive_failures']).where('id', '=', workflowId).executeTakeFirstOrThrow();
    expect(workflow).toMatchObject({ status: 'paused', consecutive_failures: 2 });
    expect(workflow.paused_reason).toMatch(/worker lease expired/);
    const emitted = await db.selectFrom('walflow.outbox').select(['event_type', 'aggregate_id', 'payload']).where('tenant_id', '=', 'expiring-mail').orderBy('event_type').execute();
    // The second run died on its notification: no email.failed for it. Deaths count in commit order.
    expect(emitted.map((row) => [row.event_type, row.aggregate_id])).toEqual([
      ['email.failed', null],
      ['workflow.auto_paused', 'p2'],
    ]);
    expect(emitted[0]!.payload).toMatchObject({ error: 'worker lease expired', actionIndex: 1, runId: claimed[0]!.id, workflowId });
  });
});

describe("a workflow whose actions change while its runs execute them", () => {
  let http: Server;
  let port: number;
  const requested: string[] = [];

  beforeAll(async () => {
    http = createServer((request, response) => {
      request.resume();
      requested.push(request.url ?? '');
      // A body whose excerpt holds a NUL and ends in half of an emoji: text PostgreSQL cannot store as it is.
      if (request.url === '/garbled') return void response.writeHead(500).end(`bad\0${'x'.repeat(495)}😀 and more`);
      response.writeHead(request.url === '/fails' ? 500 : 204).end();
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    port = (http.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  it('records a failure whose text PostgreSQL cannot store as given, a NUL and half an emoji each in its place', async () => {
    await applyWorkflow(db, {
      tenant: 'garbled',
      name: 'call',
      trigger: { event: 'payment.received' },
      retry: { maxAttempts: 1 },
      autoPause: { afterConsecutiveFailures: 1 },
      actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/garbled` }],
    });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('garbled', { n: 1 })], parked: [], checkpoint: null });
    const [run] = (await claimRuns(db, 'garbled/0', 10, 60_000)).filter((claimed) => claimed.event.tenantId === 'garbled');
    expect(await executeRun(run!, 'garbled/0', options)).toBe('dead');
    const stored = await db.selectFrom('walflow.workflow_runs').select(['status', 'last_error']).where('id', '=', run!.id).executeTakeFirstOrThrow();
    expect(stored.status).toBe('dead');
    expect(stored.last_error).toContain(`bad\uFFFD${'x'.repeat(495)}\uFFFD`);
    const outcome = await db.selectFrom('walflow.action_outcomes').select(['status', 'error']).where('run_id', '=', run!.id).executeTakeFirstOrThrow();
    expect(outcome).toEqual({ status: 'failed', error: stored.last_error });
    const workflow = await db.selectFrom('walflow.workflows').select(['status', 'paused_reason']).where('tenant_id', '=', 'garbled').executeTakeFirstOrThrow();
    expect(workflow.status).toBe('paused');
    expect(workflow.paused_reason).toContain('bad\uFFFD');
    const paused = await db.selectFrom('walflow.outbox').select('payload').where('tenant_id', '=', 'garbled').where('event_type', '=', 'workflow.auto_paused').executeTakeFirstOrThrow();
    expect(paused.payload).toMatchObject({ lastError: expect.stringContaining('bad\uFFFD') });
  });

  it('cancels the runs that had begun them, with the reason, and lets the runs that had done nothing run the new ones', async () => {
    const document = (actions: unknown[]) => ({ tenant: 'edited', name: 'two-calls', trigger: { event: 'payment.received' }, actions });
    const ok = { type: 'webhook', url: `http://127.0.0.1:${port}/ok` };
    await applyWorkflow(db, document([ok, { type: 'webhook', url: `http://127.0.0.1:${port}/fails` }]));
    const dispatcher = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    await dispatcher.dispatch({ events: [paymentEvent('edited', { n: 1 })], parked: [], checkpoint: null });
    const [begun] = (await claimRuns(db, 'edited/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 })).filter((run) => run.event.tenantId === 'edited');
    // The first call succeeds, the second fails: the run waits for a retry with action 0 done.
    expect(await executeRun(begun!, 'edited/0', options)).toBe('retrying');
    // Two runs out of attempts, as the retry policy leaves them: one after action 0 succeeded, one that did nothing.
    await dispatcher.dispatch({ events: [paymentEvent('edited', { n: 3 }), paymentEvent('edited', { n: 4 })], parked: [], checkpoint: null });
    const [deadAfterSuccess, deadUntouched] = (await claimRuns(db, 'edited/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 2 })).filter((run) => run.event.tenantId === 'edited');
    expect(await executeRun(deadAfterSuccess!, 'edited/0', options)).toBe('retrying');
    await db.updateTable('walflow.workflow_runs').set({ status: 'dead', finished_at: new Date(), locked_by: null, locked_until: null })
      .where('id', 'in', [deadAfterSuccess!.id, deadUntouched!.id]).execute();
    await dispatcher.dispatch({ events: [paymentEvent('edited', { n: 2 })], parked: [], checkpoint: null });

    const unchanged = await applyWorkflow(db, { ...document([ok, { type: 'webhook', url: `http://127.0.0.1:${port}/fails` }]), status: 'active' });
    expect(unchanged).toMatchObject({ outcome: 'unchanged', runsCancelled: 0 });
    // A new action in front: a retry skipping action 0 would skip it, and call /ok again; so would an operator's
    // retry of the dead run whose action 0 succeeded.
    const edited = await applyWorkflow(db, document([{ type: 'emit_event', event: 'payment.noted' }, ok, ok]));
    expect(edited).toMatchObject({ outcome: 'updated', runsCancelled: 2 });

    const runs = await db.selectFrom('walflow.workflow_runs').select(['id', 'status', 'last_error']).where('tenant_id', '=', 'edited').execute();
    for (const cancelled of [begun!, deadAfterSuccess!]) {
      expect(runs.find((run) => run.id === cancelled.id)).toMatchObject({ status: 'cancelled', last_error: expect.stringMatching(/actions changed \(version 2\)/) });
    }
    expect(runs.find((run) => run.id === deadUntouched!.id)).toMatchObject({ status: 'dead' });
    expect(runs.filter((run) => ![begun!.id, deadAfterSuccess!.id, deadUntouched!.id].includes(run.id))).toEqual([expect.objectContaining({ status: 'queued' })]);
    // The later tests' claims take every due run of the database: leave none that calls out.
    await db.updateTable('walflow.workflow_runs').set({ status: 'cancelled' }).where('tenant_id', '=', 'edited').where('status', 'in', ['queued', 'dead']).execute();
  });

  it('leaves a dead run to be retried when the action it died on is fixed: its retry runs the fixed action only', async () => {
    const document = (second: string) => ({ tenant: 'fixed', name: 'two-calls', trigger: { event: 'payment.received' }, retry: { maxAttempts: 1 }, actions: [
      { type: 'webhook', url: `http://127.0.0.1:${port}/ok` },
      { type: 'webhook', url: `http://127.0.0.1:${port}/${second}` },
    ] });
    await applyWorkflow(db, document('fails'));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('fixed', { n: 1 })], parked: [], checkpoint: null });
    const claim = async () => (await claimRuns(db, 'fixed/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 })).filter((run) => run.event.tenantId === 'fixed');
    const [run] = await claim();
    expect(await executeRun(run!, 'fixed/0', options)).toBe('dead');
    requested.length = 0;
    // The second call fixed in place: the first, which succeeded, keeps its place.
    expect(await applyWorkflow(db, document('fixed-path'))).toMatchObject({ outcome: 'updated', runsCancelled: 0 });
    await retryDeadRun(db, run!.id);
    const [retried] = await claim();
    expect(await executeRun(retried!, 'fixed/0', options)).toBe('succeeded');
    expect(requested).toEqual(['/fixed-path']);
  });

  it('backs a dead run off, once an operator retried it, from the first delay again, as a new run', async () => {
    await applyWorkflow(db, { tenant: 'backoff', name: 'call', trigger: { event: 'payment.received' }, retry: { maxAttempts: 2 }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/fails` }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('backoff', { n: 1 })], parked: [], checkpoint: null });
    const claim = async () => (await claimRuns(db, 'backoff/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 })).filter((run) => run.event.tenantId === 'backoff');
    const dueNow = () => db.updateTable('walflow.workflow_runs').set({ next_attempt_at: sql`now()` }).where('tenant_id', '=', 'backoff').execute();
    expect(await executeRun((await claim())[0]!, 'backoff/0', options)).toBe('retrying');
    await dueNow();
    const [last] = await claim();
    expect(await executeRun(last!, 'backoff/0', options)).toBe('dead');
    await retryDeadRun(db, last!.id);
    expect(await executeRun((await claim())[0]!, 'backoff/0', options)).toBe('retrying');
    const { rows } = await sql<{ seconds: number }>`
      SELECT extract(epoch FROM next_attempt_at - now())::float8 AS seconds FROM walflow.workflow_runs WHERE id = ${last!.id}`.execute(db);
    // The first delay of a run (0.5-1 s by default), not the third (2-4 s).
    expect(rows[0]!.seconds).toBeLessThan(1.5);
    await db.updateTable('walflow.workflow_runs').set({ status: 'cancelled' }).where('tenant_id', '=', 'backoff').execute();
  });

  it('keeps an action succeeded when its failure is recorded after the success committed (its answer lost), so the retry skips it', async () => {
    await applyWorkflow(db, { tenant: 'lost-answer', name: 'call', trigger: { event: 'payment.received' }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/ok` }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('lost-answer', { n: 1 })], parked: [], checkpoint: null });
    const claim = async () => (await claimRuns(db, 'lost/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 })).filter((run) => run.event.tenantId === 'lost-answer');
    const [run] = await claim();
    const outcome = { runId: run!.id, actionIndex: 0, actionType: 'webhook' };
    await db.transaction().execute((trx) => recordOutcomes(trx, [{ ...outcome, status: 'succeeded' }]));
    // The worker saw the commit fail and records the action failed, as executeRun's catch does.
    await db.transaction().execute(async (trx) => {
      await recordOutcomes(trx, [{ ...outcome, status: 'failed', error: 'Connection terminated unexpectedly' }]);
      await failRun(trx, run!.id, 'Connection terminated unexpectedly', 0);
    });
    const [retry] = await claim();
    expect([...retry!.actionsDone]).toEqual([0]);
    expect(await db.selectFrom('walflow.action_outcomes').select(['status', 'error']).where('run_id', '=', run!.id).execute()).toEqual([{ status: 'succeeded', error: null }]);
    await db.updateTable('walflow.workflow_runs').set({ status: 'cancelled' }).where('id', '=', run!.id).execute();
  });

  it('does not report a mail failed when the run dies on a lost answer to the commit that recorded it sent', async () => {
    const smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onData: (stream, _session, callback) => stream.resume().on('end', () => callback()) });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const mail = { host: '127.0.0.1', port: (smtp.server.address() as AddressInfo).port, secure: false, from: 'walflow@agency.test' };
    await applyWorkflow(db, { tenant: 'lost-mail', name: 'welcome', trigger: { event: 'payment.received' }, retry: { maxAttempts: 1 }, actions: [{ type: 'send_email', to: 'ada@agency.test', subject: 'hi', text: 'hi' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('lost-mail', { n: 1 })], parked: [], checkpoint: null });
    try {
      // The commit that records the mail sent takes effect, and its answer never reaches the worker.
      const dies = await withCommitAnswerLost(
        { table: 'walflow.action_outcomes', event: 'INSERT', when: sql`NEW.action_type = 'send_email' AND NEW.status = 'succeeded'` },
        async (own) => {
          const [run] = (await claimRuns(db, 'lost-mail/0', 10, 60_000, { actionTypes: ['send_email'], maxCallingOut: 1 })).filter((claimed) => claimed.event.tenantId === 'lost-mail');
          return executeRun(run!, 'lost-mail/0', { ...options, db: own, runtime: { ...options.runtime, smtp: mail } });
        },
      );
      expect(dies).toBe('dead');
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
    const followUps = await db.selectFrom('walflow.outbox').select('event_type').where('tenant_id', '=', 'lost-mail').orderBy('event_type').execute();
    expect(followUps.map((row) => row.event_type)).toEqual(['email.sent']);
    const dead = await db.selectFrom('walflow.workflow_runs').select(['status', 'last_error']).where('tenant_id', '=', 'lost-mail').execute();
    expect(dead).toEqual([{ status: 'dead', last_error: expect.stringMatching(/connection|terminated/i) }]);
  });

  it('executes the runs a claim leased when the claim committed with its answer lost, instead of leaving them to their leases', async () => {
    await applyWorkflow(db, { tenant: 'lost-claim', name: 'call', trigger: { event: 'payment.received' }, retry: { maxAttempts: 1 }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/ok` }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('lost-claim', { n: 1 })], parked: [], checkpoint: null });
    // The claim's commit takes effect, and its answer never reaches the worker.
    await withCommitAnswerLost(
      { table: 'walflow.workflow_runs', event: 'UPDATE', when: sql`NEW.tenant_id = 'lost-claim' AND NEW.status = 'running'` },
      (own) =>
        claimAndExecuteHeld(
          { workerId: 'lost-claim/0', limit: 10, leaseMs: 60_000, callingOut: { actionTypes: ['webhook'], maxCallingOut: 1 }, workflows: new WorkflowCache(), onClaimed: () => undefined },
          { ...options, db: own },
        ),
    );
    const run = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts']).where('tenant_id', '=', 'lost-claim').executeTakeFirstOrThrow();
    expect(run).toEqual({ status: 'succeeded', attempts: 1 });
  });

  it('acts on the definition its run was claimed under: an apply committed as the run starts cancels it, and nothing is called', async () => {
    const document = (actions: unknown[]) => ({ tenant: 'edited-race', name: 'two-calls', trigger: { event: 'payment.received' }, actions });
    await applyWorkflow(db, document([{ type: 'webhook', url: `http://127.0.0.1:${port}/ok` }, { type: 'webhook', url: `http://127.0.0.1:${port}/fails` }]));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('edited-race', { n: 1 })], parked: [], checkpoint: null });
    const claim = async () => (await claimRuns(db, 'race/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 })).filter((run) => run.event.tenantId === 'edited-race');
    const [first] = await claim();
    expect(await executeRun(first!, 'race/0', options)).toBe('retrying');
    await db.updateTable('walflow.workflow_runs').set({ next_attempt_at: sql`now()` }).where('id', '=', first!.id).execute();
    const [retry] = await claim();
    expect([...retry!.actionsDone]).toEqual([0]);

    const callsBefore = requested.length;
    let executing: Promise<unknown> | undefined;
    await db.transaction().execute(async (trx) => {
      // The worker waits to read the workflow while the apply commits: it must not act on the new actions.
      await sql`LOCK TABLE walflow.workflows IN ACCESS EXCLUSIVE MODE`.execute(trx);
      executing = executeRun(retry!, 'race/0', options);
      await waitForLockWait(db, 'the run to wait for its workflow', '%"walflow"."workflows"%');
      const applied = await applyWorkflow(trx, document([{ type: 'emit_event', event: 'payment.noted' }, { type: 'webhook', url: `http://127.0.0.1:${port}/new` }]));
      expect(applied.runsCancelled).toBe(1);
    });
    expect(await executing).toBe('lease_lost');
    expect(requested.slice(callsBefore)).toEqual([]);
    expect(await db.selectFrom('walflow.workflow_runs').select('status').where('id', '=', retry!.id).executeTakeFirst()).toEqual({ status: 'cancelled' });
  });
});

describe('waking workers', () => {
  let http: Server;
  let port: number;
  let inFlight = 0;
  let mostInFlight = 0;

  beforeAll(async () => {
    http = createServer((request, response) => {
      request.resume();
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        response.writeHead(204).end();
      }, 300);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    port = (http.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  /** A pool that never polls: only notify() and the workers' own wake-ups move it. */
  async function runUntilDone(tenant: string, runs: number, notify: (pool: WorkerPool) => void): Promise<void> {
    const pool = new WorkerPool({ db, logger: silentLogger, concurrency: 4, pollIntervalMs: 600_000, runtime: options.runtime });
    pool.start();
    try {
      notify(pool);
      await waitFor(`the ${runs} runs of ${tenant} to succeed`, async () => {
        const rows = await db.selectFrom('walflow.workflow_runs').select('status').where('tenant_id', '=', tenant).execute();
        return rows.length === runs && rows.every((row) => row.status === 'succeeded') ? rows : undefined;
      }, { timeoutMs: 20_000 });
    } finally {
      await pool.stop();
    }
  }

  it('spreads runs that call out over the workers, each claim taking one', async () => {
    await applyTestWorkflow(db, { tenant: 'spread', name: 'call', trigger: { event: 'payment.received' }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/spread` }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [1, 2, 3, 4].map((n) => paymentEvent('spread', { n })), parked: [], checkpoint: null });
    // Four queued runs are less than one claim: one worker is woken, and each claim of a run that calls out wakes the next.
    await runUntilDone('spread', 4, (pool) => pool.notify(4));
    expect(mostInFlight).toBeGreaterThan(1);
  });

  it('executes runs held back by the order of their aggregate as soon as the earlier ones finish', async () => {
    await applyTestWorkflow(db, { tenant: 'in-order', name: 'notify', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title: '{{event.payload.n}}' }] });
    const events = [1, 2, 3].map((n) => ({ ...paymentEvent('in-order', { n }), aggregateType: 'account', aggregateId: 'a1' }));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events, parked: [], checkpoint: null });
    await runUntilDone('in-order', 3, (pool) => pool.notify(3));
  });
});

describe('a claim that holds its database-only runs in the transaction that executes them', () => {
  // Shared by every claim, as a worker pool's.
  const workflows = new WorkflowCache();
  const claimAndExecute = (workerId: string, callingOut = { actionTypes: ['webhook'], maxCallingOut: 1 }, through: Kysely<WalflowDatabase> = db) =>
    claimAndExecuteHeld({ workerId, limit: 100, leaseMs: 60_000, callingOut, workflows, onClaimed: () => undefined }, { ...options, db: through });

  async function runsOf(tenant: string) {
    return db
      .selectFrom('walflow.workflow_runs')
      .select(['id', 'status', 'attempts', 'locked_by', 'started_at', sql<string>`xmin::text`.as('xmin')])
      .where('tenant_id', '=', tenant)
      .orderBy('commit_lsn')
      .execute();
  }

  /** A workflow that adds 1 to the balance of the account its event names. */
  async function applyCreditWorkflow(tenant: string): Promise<void> {
    await applyTestWorkflow(
      db,
      {
        tenant,
        name: 'credit',
        trigger: { event: 'payment.received' },
        actions: [{ type: 'update_field', table: 'batch_test.accounts', column: 'balance', key: { column: 'id', value: '{{event.payload.account}}' }, increment: 1 }],
      },
      policy,
    );
  }

  it('leaves them queued and unleased while they execute, passed over by other claims, and finishes them in one write', async () => {
    await applyCreditWorkflow('held');
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('h1'), ('h2')`.execute(db);
    // The batch's update of h1 waits for this lock inside the worker's transaction.
    const lock = await holdOpen(db, sql`SELECT 1 FROM batch_test.accounts WHERE id = 'h1' FOR UPDATE`);
    // h1 twice for one aggregate: the second must wait for the first, which its worker holds without a lease.
    const events = [{ account: 'h1' }, { account: 'h2' }, { account: 'h1' }].map((payload) => ({ ...paymentEvent('held', payload), aggregateType: 'account', aggregateId: payload.account }));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events, parked: [], checkpoint: null });
    const executing = claimAndExecute('held/0');
    await waitForLockWait(db, 'the held batch to wait for the account lock', '%batch_test%');
    const whileHeld = await runsOf('held');
    expect(whileHeld.map((run) => [run.status, run.attempts, run.locked_by])).toEqual(Array(3).fill(['queued', 0, null]));
    const [first, second, later] = whileHeld;
    // Another worker takes none of them: the first two are locked, the third waits for the first of its aggregate.
    expect((await claimRuns(db, 'held/1', 100, 60_000)).filter((run) => run.event.tenantId === 'held')).toEqual([]);
    await lock.release();
    const { claimed, leased } = await executing;
    expect(claimed).toBeGreaterThanOrEqual(2);
    expect(leased).toEqual([]);

    const after = await runsOf('held');
    expect(after.slice(0, 2).map((run) => [run.status, run.attempts, run.locked_by, run.started_at !== null])).toEqual(Array(2).fill(['succeeded', 1, null, true]));
    // One transaction claimed, executed and finished both.
    expect(new Set([after[0]!.xmin, after[1]!.xmin]).size).toBe(1);
    expect([first!.id, second!.id]).toEqual([after[0]!.id, after[1]!.id]);
    // Now the later run of h1 is free, and goes the same way.
    await claimAndExecute('held/0');
    expect((await runsOf('held')).find((run) => run.id === later!.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    const balances = await sql<{ id: string; balance: string }>`SELECT id, balance::text FROM batch_test.accounts WHERE id IN ('h1', 'h2') ORDER BY id`.execute(db);
    expect(balances.rows).toEqual([{ id: 'h1', balance: '2' }, { id: 'h2', balance: '1' }]);
  });

  it('leases the runs afresh when the transaction fails, counting the attempt, and executes them one by one', async () => {
    await applyCreditWorkflow('held-failing');
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('f1'), ('f2')`.execute(db);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({
      events: [{ account: 'f1' }, { account: 'nowhere' }, { account: 'f2' }].map((payload) => paymentEvent('held-failing', payload)),
      parked: [],
      checkpoint: null,
    });
    await claimAndExecute('held-failing/0');
    const runs = await runsOf('held-failing');
    expect(runs.map((run) => [run.status, run.attempts])).toEqual([['succeeded', 1], ['queued', 1], ['succeeded', 1]]);
    const failing = await db.selectFrom('walflow.workflow_runs').select(['last_error', 'next_attempt_at']).where('id', '=', runs[1]!.id).executeTakeFirstOrThrow();
    expect(failing.last_error).toMatch(/nowhere|no row/i);
    expect(failing.next_attempt_at.getTime()).toBeGreaterThan(Date.now());
    const balances = await sql<{ id: string; balance: string }>`SELECT id, balance::text FROM batch_test.accounts WHERE id IN ('f1', 'f2') ORDER BY id`.execute(db);
    expect(balances.rows).toEqual([{ id: 'f1', balance: '1' }, { id: 'f2', balance: '1' }]);
  });

  it('stops a leased run whose worker cannot reach the database for longer than its lease', async () => {
    await applyTestWorkflow(db, { tenant: 'cut-off', name: 'call', trigger: { event: 'payment.received' }, actions: [{ type: 'webhook', url: 'http://127.0.0.1:9/never' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('cut-off', { n: 1 })], parked: [], checkpoint: null });
    const [run] = (await claimRuns(db, 'cut-off/0', 10, 60_000, { actionTypes: ['webhook'], maxCallingOut: 1 })).filter((claimed) => claimed.event.tenantId === 'cut-off');
    const proxy = await startProxy(database.url);
    const own = createDatabase(proxy.url, silentLogger, { max: 2 });
    try {
      const lease = await keepLease(own, run!.id, 'cut-off/0', 300, silentLogger);
      expect(lease).not.toBeNull();
      proxy.cut();
      const started = Date.now();
      await waitFor('the lease to be given up', () => lease!.lost.aborted, { timeoutMs: 5_000 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      lease!.stop();
    } finally {
      await own.destroy();
      await proxy.close();
    }
    await db.updateTable('walflow.workflow_runs').set({ status: 'cancelled' }).where('id', '=', run!.id).execute();
  });

  it('counts the attempt of runs whose session died even when the database refuses connections for a while', async () => {
    await applyCreditWorkflow('held-crash');
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('c1')`.execute(db);
    const lock = await holdOpen(db, sql`SELECT 1 FROM batch_test.accounts WHERE id = 'c1' FOR UPDATE`);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('held-crash', { account: 'c1' })], parked: [], checkpoint: null });
    const proxy = await startProxy(database.url);
    const own = createDatabase(proxy.url, silentLogger, { max: 1 });
    try {
      const executing = claimAndExecute('held-crash/0', undefined, own);
      const pid = await waitFor('the held batch to wait for the account lock', async () => {
        const { rows } = await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%batch_test%'`.execute(db);
        return rows[0]?.pid;
      });
      // As when its backend crashes: the session ends, and the server refuses new ones while it restarts.
      proxy.cut();
      await sql`SELECT pg_terminate_backend(${pid}::int)`.execute(db);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      proxy.restore();
      await lock.release();
      await executing;
    } finally {
      await own.destroy();
      await proxy.close();
    }
    // Leased once the server answered again, its attempt counted, then executed on its own.
    expect((await runsOf('held-crash')).map((run) => [run.status, run.attempts])).toEqual([['succeeded', 1]]);
  });

  it('leases runs of a workflow with a concurrency limit, without waiting for a group lock another claim holds', async () => {
    const workflowId = await applyTestWorkflow(db, {
      tenant: 'held-limited',
      name: 'notify',
      trigger: { event: 'payment.received' },
      concurrency: { limit: 1 },
      ordering: 'none',
      actions: [{ type: 'create_notification', recipient: 'u1', title: 'x' }],
    });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [1, 2].map((n) => paymentEvent('held-limited', { n })), parked: [], checkpoint: null });
    const { concurrency_key: group } = await db.selectFrom('walflow.workflow_runs').select('concurrency_key').where('tenant_id', '=', 'held-limited').executeTakeFirstOrThrow();
    // Another claimer holds the group's lock in a transaction that stays open.
    const otherClaim = await holdOpen(db, sql`SELECT pg_advisory_xact_lock(30563, hashtext(${`${workflowId}/${group}`}))`);
    const passedOver = await claimAndExecute('held-limited/0');
    expect(passedOver.leased.filter((run) => run.event.tenantId === 'held-limited')).toEqual([]);
    await otherClaim.release();

    const { leased } = await claimAndExecute('held-limited/0');
    const ours = leased.filter((run) => run.event.tenantId === 'held-limited');
    expect(ours).toHaveLength(1);
    expect(ours[0]!.attempts).toBe(1);
    // The lease is committed: the run counts against the limit for every other claimer.
    expect((await runsOf('held-limited')).map((run) => [run.status, run.locked_by])).toEqual(
      expect.arrayContaining([['running', 'held-limited/0'], ['queued', null]]),
    );
    expect((await claimRuns(db, 'held-limited/1', 100, 60_000)).filter((run) => run.event.tenantId === 'held-limited')).toEqual([]);
  });

  it('leases a held run whose workflow turns out to call out, for its caller to execute after the commit', async () => {
    await applyTestWorkflow(db, { tenant: 'held-calling', name: 'call', trigger: { event: 'payment.received' }, actions: [{ type: 'webhook', url: 'http://127.0.0.1:9/never' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('held-calling', { n: 1 })], parked: [], checkpoint: null });
    // A claim told of no calling-out types holds the run; the executor, reading the workflow, knows better.
    const { leased } = await claimAndExecute('held-calling/0', { actionTypes: [], maxCallingOut: 100 });
    expect(leased.filter((run) => run.event.tenantId === 'held-calling').map((run) => run.attempts)).toEqual([1]);
    expect((await runsOf('held-calling')).map((run) => [run.status, run.attempts, run.locked_by])).toEqual([['running', 1, 'held-calling/0']]);
  });

  it('leases the runs of a rolled-back claim as the queue has them by then: actions done read again, a retry due later left alone', async () => {
    await applyCreditWorkflow('held-stale');
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('s1')`.execute(db);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({
      events: [{ account: 's1' }, { account: 's1' }].map((payload) => paymentEvent('held-stale', payload)),
      parked: [],
      checkpoint: null,
    });
    // Worker A holds both runs in a transaction that rolls back...
    let stale: ClaimedRun[] = [];
    await db
      .transaction()
      .execute(async (trx) => {
        const { held } = await claimRunsToHold(trx, 'stale-a/0', 100, 60_000, { actionTypes: [], maxCallingOut: 1 }, 10_000);
        stale = held.filter((run) => run.event.tenantId === 'held-stale');
        throw new Error('rolled back');
      })
      .catch(() => undefined);
    expect(stale.map((run) => [run.attempts, [...run.actionsDone]])).toEqual([[0, []], [0, []]]);
    // ...and before it leases them, worker B leases both: it performs the first run's action and hands that run
    // back at shutdown (its attempt uncounted); the second run fails and is due again in an hour.
    const taken = (await claimRuns(db, 'stale-b/0', 100, 60_000)).filter((run) => run.event.tenantId === 'held-stale');
    const [handedBack, retried] = stale.map((run) => taken.find((candidate) => candidate.id === run.id)!);
    await db.transaction().execute(async (trx) => {
      await sql`UPDATE batch_test.accounts SET balance = balance + 1 WHERE id = 's1'`.execute(trx);
      await recordOutcomes(trx, [{ runId: handedBack!.id, actionIndex: 0, actionType: 'update_field', status: 'succeeded' }]);
      await failRun(trx, retried!.id, 'failed', 3_600_000);
    });
    expect(await releaseHeldRuns(db, 'stale-b')).toBe(1);

    const leased = await leaseHeldRuns(db, stale, 'stale-a/0', 60_000);
    expect(leased.map((run) => [run.id, run.attempts, [...run.actionsDone]])).toEqual([[handedBack!.id, 1, [0]]]);
    // Asked again, as after an answer lost: the same run, its attempt counted once.
    const again = await leaseHeldRuns(db, stale, 'stale-a/0', 60_000);
    expect(again.map((run) => [run.id, run.attempts, [...run.actionsDone]])).toEqual([[handedBack!.id, 1, [0]]]);
    expect(await executeRun(leased[0]!, 'stale-a/0', options)).toBe('succeeded');
    const balance = await sql<{ balance: string }>`SELECT balance::text FROM batch_test.accounts WHERE id = 's1'`.execute(db);
    expect(balance.rows).toEqual([{ balance: '1' }]);
    expect((await runsOf('held-stale')).map((run) => [run.status, run.attempts, run.locked_by])).toEqual([['succeeded', 1, null], ['queued', 1, null]]);
  });

  it('keeps locked only the runs it takes: runs that call out, passed over beyond the one it takes, are free to other workers meanwhile', async () => {
    await applyCreditWorkflow('held-passing');
    await applyTestWorkflow(db, { tenant: 'held-passing', name: 'call', trigger: { event: 'payment.sent' }, actions: [{ type: 'webhook', url: 'http://127.0.0.1:9/never' }] });
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('p1')`.execute(db);
    // The held batch's update of p1 waits for this lock, with the claim's transaction open.
    const lock = await holdOpen(db, sql`SELECT 1 FROM batch_test.accounts WHERE id = 'p1' FOR UPDATE`);
    const events = [paymentEvent('held-passing', { account: 'p1' }), { ...paymentEvent('held-passing', { n: 1 }), type: 'payment.sent' }, { ...paymentEvent('held-passing', { n: 2 }), type: 'payment.sent' }];
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events, parked: [], checkpoint: null });
    const executing = claimAndExecute('held-passing/0');
    await waitForLockWait(db, 'the held batch to wait for the account lock', '%batch_test%');
    // The claim took one run that calls out; another worker takes the others at once, not after the batch.
    const elsewhere = (await claimRuns(db, 'held-passing/1', 100, 60_000, { actionTypes: ['webhook'], maxCallingOut: 100 })).filter((run) => run.event.tenantId === 'held-passing');
    await lock.release();
    const { leased } = await executing;
    const leasedHere = leased.filter((run) => run.event.tenantId === 'held-passing');
    expect(elsewhere.length + leasedHere.length).toBe(2);
    expect(new Set([...elsewhere, ...leasedHere].map((run) => run.id)).size).toBe(2);
  });

  it('executes each run with its workflow as the claim finds it, however many claims ago the workflow was read', async () => {
    const titled = (title: string) =>
      applyTestWorkflow(db, { tenant: 'held-edited', name: 'note', trigger: { event: 'payment.received' }, actions: [{ type: 'create_notification', recipient: 'u1', title }] });
    const dispatcher = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    const statements: string[] = [];
    const logged = new Kysely<WalflowDatabase>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 1 }) }),
      log: (entry) => void (entry.level === 'query' && statements.push(entry.query.sql)),
    });
    const dispatchAndExecute = async (n: number): Promise<string[]> => {
      await dispatcher.dispatch({ events: [paymentEvent('held-edited', { n })], parked: [], checkpoint: null });
      statements.length = 0;
      const { claimed } = await claimAndExecute('held-edited/0', { actionTypes: [], maxCallingOut: 1 }, logged);
      expect(claimed).toBe(1);
      return [...statements];
    };
    const readsWorkflows = (batch: string[]) => batch.some((text) => text.includes('from "walflow"."workflows"'));
    try {
      await titled('first');
      expect(readsWorkflows(await dispatchAndExecute(1))).toBe(true);
      // BEGIN, the claim (which also sets the action timeout), the action, the completion, COMMIT: five round
      // trips, where a statement of its own for the workflows and another for the timeout made seven.
      const known = await dispatchAndExecute(2);
      expect(readsWorkflows(known)).toBe(false);
      expect(known).toHaveLength(5);
      await titled('second');
      expect(readsWorkflows(await dispatchAndExecute(3))).toBe(true);
    } finally {
      await logged.destroy();
    }
    const notes = await db.selectFrom('walflow.notifications').select('title').where('tenant_id', '=', 'held-edited').orderBy('created_at').execute();
    expect(notes.map((note) => note.title)).toEqual(['first', 'first', 'second']);
  });

  it("keeps the leases of runs waiting their turn behind slow ones, so that a sweep takes none from a worker at work", async () => {
    await applyCreditWorkflow('held-waiting');
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('w1'), ('w2')`.execute(db);
    // Every update of w1 waits for this lock until the action timeout (400 ms): the held batch fails, and its runs
    // are leased (1.2 s) and executed one by one, the w2 run last, more than a lease after it was leased.
    const lock = await holdOpen(db, sql`SELECT 1 FROM batch_test.accounts WHERE id = 'w1' FOR UPDATE`);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({
      events: [{ account: 'w1' }, { account: 'w1' }, { account: 'w1' }, { account: 'w1' }, { account: 'w2' }].map((payload) => paymentEvent('held-waiting', payload)),
      parked: [],
      checkpoint: null,
    });
    const short = { ...options, leaseMs: 1_200, runtime: { ...options.runtime, actionTimeoutMs: 400 } };
    let sweeping = true;
    const sweeps = (async () => {
      while (sweeping) {
        await releaseExpiredLeases(db, silentLogger);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await claimAndExecuteHeld({ workerId: 'held-waiting/0', limit: 100, leaseMs: 1_200, callingOut: { actionTypes: [], maxCallingOut: 1 }, workflows, onClaimed: () => undefined }, short);
    } finally {
      sweeping = false;
      await sweeps;
      await lock.release();
    }
    const runs = await runsOf('held-waiting');
    expect(runs.map((run) => [run.status, run.attempts])).toEqual([...Array(4).fill(['queued', 1]), ['succeeded', 1]]);
    const balance = await sql<{ balance: string }>`SELECT balance::text FROM batch_test.accounts WHERE id = 'w2'`.execute(db);
    expect(balance.rows).toEqual([{ balance: '1' }]);
  });

  it('goes on with the runs after one whose failure could not be recorded, which its lease returns to the queue', async () => {
    await applyCreditWorkflow('held-unrecorded');
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('u1')`.execute(db);
    // The first run's action fails (no account 'unrecordable'), and so does the record of that failure.
    await sql`
      CREATE FUNCTION batch_test.refuse_failure() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'the failure of % cannot be recorded', NEW.id; END $$;
      CREATE TRIGGER refuse_failure BEFORE UPDATE ON walflow.workflow_runs FOR EACH ROW
        WHEN (NEW.tenant_id = 'held-unrecorded' AND NEW.last_error LIKE '%unrecordable%') EXECUTE FUNCTION batch_test.refuse_failure()`.execute(db);
    try {
      await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({
        events: [{ account: 'unrecordable' }, { account: 'u1' }].map((payload) => paymentEvent('held-unrecorded', payload)),
        parked: [],
        checkpoint: null,
      });
      await claimAndExecute('held-unrecorded/0', { actionTypes: [], maxCallingOut: 1 });
    } finally {
      await sql`DROP TRIGGER refuse_failure ON walflow.workflow_runs; DROP FUNCTION batch_test.refuse_failure()`.execute(db);
    }
    const runs = await runsOf('held-unrecorded');
    expect(runs.map((run) => [run.status, run.attempts, run.locked_by])).toEqual([['running', 1, 'held-unrecorded/0'], ['succeeded', 1, null]]);
  });

  it('frees the runs of a claim whose worker stopped talking within a lease: the server ends the idle transaction', async () => {
    await applyCreditWorkflow('held-idle');
    await sql`INSERT INTO batch_test.accounts (id) VALUES ('i1')`.execute(db);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('held-idle', { account: 'i1' })], parked: [], checkpoint: null });
    const own = createDatabase(database.url, silentLogger, { max: 1 });
    try {
      // A worker that claims and then says nothing more, as one whose event loop hangs or whose network went.
      let claimed!: (runs: number) => void;
      const claim = new Promise<number>((resolve) => (claimed = resolve));
      const silent = own.transaction().execute(async (trx) => {
        // Idle for at most a lease (1 s), since its statement limit (0.5 s) is shorter.
        const { held } = await claimRunsToHold(trx, 'held-idle/0', 100, 1_000, { actionTypes: [], maxCallingOut: 1 }, 500);
        claimed(held.filter((run) => run.event.tenantId === 'held-idle').length);
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        await sql`SELECT 1`.execute(trx);
      });
      expect(await claim).toBe(1);
      const taken = await waitFor('another worker to take the run', async () => {
        const claimed = (await claimRuns(db, 'held-idle/1', 100, 60_000)).filter((run) => run.event.tenantId === 'held-idle');
        return claimed.length > 0 ? claimed : undefined;
      }, { timeoutMs: 2_400 });
      expect(taken).toHaveLength(1);
      await expect(silent).rejects.toThrow(/idle-in-transaction|terminat|Connection/i);
    } finally {
      await own.destroy();
    }
  });

});

/** The lock withCommitAnswerLost's trigger waits for. */
const COMMIT_HELD_LOCK = 7241;

/**
 * Runs `work` on a database reached through a proxy whose connection drops while a commit of it waits: a deferred
 * constraint trigger after `event` on `table` for rows matching `when` holds the commit on a lock the test holds,
 * the network drops, and the lock is let go, so the commit takes effect and its answer never reaches `work`.
 * Returns what `work` settled to.
 */
async function withCommitAnswerLost<T>(
  trigger: { table: string; event: 'INSERT' | 'UPDATE'; when: RawBuilder<boolean> },
  work: (own: Kysely<WalflowDatabase>) => Promise<T>,
): Promise<T> {
  const table = sql.table(trigger.table);
  const holder = createDatabase(database.url, silentLogger, { max: 1 });
  await sql`SELECT pg_advisory_lock(${COMMIT_HELD_LOCK})`.execute(holder);
  await sql`CREATE FUNCTION public.held_commit() RETURNS trigger LANGUAGE plpgsql
    AS ${sql.lit(`BEGIN PERFORM pg_advisory_xact_lock_shared(${COMMIT_HELD_LOCK}); RETURN NULL; END`)}`.execute(db);
  await sql`CREATE CONSTRAINT TRIGGER held_commit AFTER ${sql.raw(trigger.event)} ON ${table} DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (${trigger.when}) EXECUTE FUNCTION public.held_commit()`.execute(db);
  const proxy = await startProxy(database.url);
  const own = createDatabase(proxy.url, silentLogger, { max: 2 });
  try {
    const working = work(own);
    await waitForLockWait(db, 'the commit to wait in its trigger', '%ommit%');
    proxy.cut();
    proxy.restore();
    await sql`SELECT pg_advisory_unlock(${COMMIT_HELD_LOCK})`.execute(holder);
    return await working;
  } finally {
    await holder.destroy();
    await own.destroy();
    await proxy.close();
    await sql`DROP TRIGGER held_commit ON ${table}`.execute(db);
    await sql`DROP FUNCTION public.held_commit()`.execute(db);
  }
}
