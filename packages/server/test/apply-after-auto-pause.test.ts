import { applyWorkflow, getWorkflow, type WorkflowDefinitionInput } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import { expect, it } from 'vitest';
import { openMigrated } from './fixtures.js';

const database = useTestDatabase();

it('resumes a workflow walflow paused itself when its document, unchanged, is applied again', async () => {
  const db = await openMigrated(database);
  try {
    const document: WorkflowDefinitionInput = { tenant: 'auto-paused', name: 'note', trigger: { event: 'policy.approved' }, autoPause: { afterConsecutiveFailures: 1 }, actions: [{ type: 'emit_event', event: 'policy.noted' }] };
    const created = await applyWorkflow(db, document);
    // As recordDeath pauses it: the status and the reason, the stored document untouched.
    await db.updateTable('walflow.workflows').set({ status: 'paused', paused_reason: 'paused after 1 consecutive dead runs', consecutive_failures: 1 }).where('id', '=', created.workflow.id).execute();

    const again = await applyWorkflow(db, document);
    expect(again.outcome).toBe('updated');
    expect(await getWorkflow(db, 'auto-paused', 'note')).toMatchObject({ status: 'active', pausedReason: null, version: 2 });
    // Applied once more, it is unchanged.
    expect((await applyWorkflow(db, document)).outcome).toBe('unchanged');
  } finally {
    await db.destroy();
  }
});
