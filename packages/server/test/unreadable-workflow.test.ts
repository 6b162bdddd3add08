import type { WalflowDatabase } from '@walflow/core';
import { candidateWorkflow, claimAndExecuteHeld, Dispatcher, executeRun, listWorkflows, WorkflowCache, type RunExecutorOptions, type WorkflowDefinitionInput } from '@walflow/executor';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, paymentEvent, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let options: RunExecutorOptions;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger, { max: 4 });
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  options = { db, logger: silentLogger, runtime: { secrets: new Map(), webhookAllowHosts: [] } };
});
afterAll(async () => {
  await db.destroy();
});

/** The document of a workflow of the tenant that notifies on every payment. */
const notifyingWorkflow = (tenant: string, name: string): WorkflowDefinitionInput => ({
  tenant,
  name,
  trigger: { event: 'payment.received' },
  retry: { maxAttempts: 2 },
  actions: [{ type: 'create_notification', recipient: 'ops', title: name }],
});

async function notifying(tenant: string, names: string[]): Promise<void> {
  for (const name of names) await applyTestWorkflow(db, notifyingWorkflow(tenant, name));
}

/** Edits a stored definition by hand, as nothing but SQL could. */
async function editStored(tenant: string, name: string, path: string, value: unknown): Promise<void> {
  await sql`UPDATE walflow.workflows SET definition = jsonb_set(definition, ${`{${path}}`}::text[], ${JSON.stringify(value)}::jsonb)
             WHERE tenant_id = ${tenant} AND name = ${name}`.execute(db);
}

describe('a stored workflow that cannot be read', () => {
  it('is decided inactive, saying why, while every other workflow is decided as before', async () => {
    await notifying('unreadable', ['good', 'malformed', 'uncompilable']);
    await editStored('unreadable', 'malformed', 'actions', 'not a list');
    await editStored('unreadable', 'uncompilable', 'condition', 'event.payload.(');
    const recorded = paymentEvent('unreadable');
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [recorded], parked: [], checkpoint: null });
    const decisions = await db
      .selectFrom('walflow.decisions as d')
      .innerJoin('walflow.workflows as w', 'w.id', 'd.workflow_id')
      .select(['w.name', 'd.outcome', 'd.reason'])
      .where('d.event_id', '=', recorded.id)
      .orderBy('w.name')
      .execute();
    expect(decisions).toEqual([
      { name: 'good', outcome: 'fired', reason: 'trigger payment.received matched' },
      { name: 'malformed', outcome: 'inactive', reason: expect.stringMatching(/^the workflow's stored definition cannot be read \(apply it again\): .*actions/s) },
      { name: 'uncompilable', outcome: 'inactive', reason: expect.stringMatching(/^the workflow's stored definition cannot be read \(apply it again\): /) },
    ]);
    // Listed beside the others, with what is wrong with it; and a document that would replace it can be backtested.
    const listed = await listWorkflows(db, { tenantId: 'unreadable' });
    expect(listed.map((workflow) => [workflow.name, 'unreadable' in workflow])).toEqual([['good', false], ['malformed', true], ['uncompilable', true]]);
    const stored = listed.find((workflow) => workflow.name === 'malformed')!;
    expect(await candidateWorkflow(db, notifyingWorkflow('unreadable', 'malformed'))).toMatchObject({ id: stored.id, version: stored.version + 1 });
  });

  it('fails its runs with the reason, each attempt counted once, while the other runs of the same claim are executed', async () => {
    await notifying('unreadable-runs', ['good', 'malformed']);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('unreadable-runs')], parked: [], checkpoint: null });
    await editStored('unreadable-runs', 'malformed', 'actions', 'not a list');
    const workerId = 'unreadable/0';
    const claimAndExecute = async (): Promise<string[]> => {
      const { leased } = await claimAndExecuteHeld(
        { workerId, limit: 100, leaseMs: 60_000, callingOut: { actionTypes: ['webhook'], maxCallingOut: 1 }, workflows: new WorkflowCache(), onClaimed: () => undefined },
        options,
      );
      for (const run of leased) await executeRun(run, workerId, options);
      return leased.map((run) => run.id);
    };
    const runs = () =>
      db
        .selectFrom('walflow.workflow_runs as r')
        .innerJoin('walflow.workflows as w', 'w.id', 'r.workflow_id')
        .select(['r.id', 'w.name', 'r.status', 'r.attempts', 'r.last_error'])
        .where('r.tenant_id', '=', 'unreadable-runs')
        .orderBy('w.name')
        .execute();
    const cannotBeRead = expect.stringMatching(/^the workflow's stored definition cannot be read \(apply it again\): /);
    // Held with the good one, then leased and executed alone: its first attempt fails, and it is retried.
    const leasedFirst = await claimAndExecute();
    const [good, malformed] = await runs();
    expect(leasedFirst).toEqual([malformed!.id]);
    expect([good, malformed]).toEqual([
      { id: good!.id, name: 'good', status: 'succeeded', attempts: 1, last_error: null },
      { id: malformed!.id, name: 'malformed', status: 'queued', attempts: 1, last_error: cannotBeRead },
    ]);
    await sql`UPDATE walflow.workflow_runs SET next_attempt_at = now() WHERE id = ${malformed!.id}`.execute(db);
    await claimAndExecute();
    expect((await runs())[1]).toMatchObject({ status: 'dead', attempts: 2, last_error: cannotBeRead });
  });
});
