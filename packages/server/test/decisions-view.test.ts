import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher, explainEvent } from '@walflow/executor';
import { createDatabase, DEFAULT_MIGRATIONS_DIR, migrate } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, approvalEvent, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(() => {
  db = createDatabase(database.url, silentLogger);
});
afterAll(async () => {
  await db.destroy();
});

/** Applies the migrations before 0019, whose decisions table held every decision, fired ones with their run. */
async function migrateBeforeFiredDecisionsOnRuns(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'walflow-migrations-'));
  try {
    for (const file of await readdir(DEFAULT_MIGRATIONS_DIR)) {
      if (file < '0019') await cp(join(DEFAULT_MIGRATIONS_DIR, file), join(dir, file));
    }
    await migrate({ db, slotName: database.slotName, logger: silentLogger, migrationsDir: dir });
  } finally {
    await rm(dir, { recursive: true });
  }
}

describe('walflow.decisions across migration 0019', () => {
  it('shows a decision recorded before it once, with its run, beside one recorded after it', async () => {
    await migrateBeforeFiredDecisionsOnRuns();
    const workflowId = await applyTestWorkflow(db, { tenant: 'upgrade', name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    const [eventId, runId] = [randomUUID(), randomUUID()];
    await sql`
      WITH event AS (
        INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid)
        VALUES (${eventId}, 'policy.approved', 'upgrade', '{}', now(), '0/1', 0, 1)),
      run AS (
        INSERT INTO walflow.workflow_runs (id, workflow_id, workflow_version, tenant_id, event_id, event_committed_at, event_type, commit_lsn, tx_position)
        VALUES (${runId}, ${workflowId}, 1, 'upgrade', ${eventId}, now(), 'policy.approved', '0/1', 0))
      INSERT INTO walflow.decisions (workflow_id, workflow_version, tenant_id, event_id, event_committed_at, outcome, reason, run_id)
      VALUES (${workflowId}, 1, 'upgrade', ${eventId}, now(), 'fired', 'trigger policy.approved matched', ${runId})`.execute(db);

    await migrate({ db, slotName: database.slotName, logger: silentLogger });
    const after = approvalEvent('upgrade', 1);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [after], parked: [], checkpoint: null });

    const decisions = await db.selectFrom('walflow.decisions').select(['event_id', 'outcome', 'reason', 'run_id']).where('tenant_id', '=', 'upgrade').orderBy('decided_at').execute();
    const afterRun = await db.selectFrom('walflow.workflow_runs').select('id').where('event_id', '=', after.id).executeTakeFirstOrThrow();
    expect(decisions).toEqual([
      { event_id: eventId, outcome: 'fired', reason: 'trigger policy.approved matched', run_id: runId },
      { event_id: after.id, outcome: 'fired', reason: 'trigger policy.approved matched', run_id: afterRun.id },
    ]);
    expect((await explainEvent(db, eventId))?.decisions).toMatchObject([{ workflow: 'w', outcome: 'fired', runId }]);
  });
});
