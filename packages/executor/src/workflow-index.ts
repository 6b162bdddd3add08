import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import { listWorkflows, type StoredWorkflow } from './workflow-store.js';

/**
 * The workflows by (tenant, trigger event), held in memory. A statement trigger bumps
 * `walflow.workflow_revision` on every change; the dispatcher reads it inside each batch's transaction and
 * reloads only when it moved, so a batch always sees the workflows as of its own snapshot.
 */
export class WorkflowIndex {
  private revision: string | null = null;
  private byTrigger = new Map<string, StoredWorkflow[]>();

  /** Workflows of this tenant triggered by this event type, disabled ones excluded. */
  match(tenantId: string, eventType: string): readonly StoredWorkflow[] {
    return this.byTrigger.get(key(tenantId, eventType)) ?? [];
  }

  async refresh(db: Kysely<WalflowDatabase>): Promise<void> {
    const row = await db.selectFrom('walflow.workflow_revision').select('revision').executeTakeFirstOrThrow();
    if (row.revision === this.revision) return;
    const byTrigger = new Map<string, StoredWorkflow[]>();
    for (const workflow of await listWorkflows(db)) {
      if (workflow.status === 'disabled') continue;
      const k = key(workflow.tenantId, workflow.triggerEvent);
      byTrigger.set(k, [...(byTrigger.get(k) ?? []), workflow]);
    }
    this.byTrigger = byTrigger;
    this.revision = row.revision;
  }
}

function key(tenantId: string, eventType: string): string {
  return `${tenantId}\u0000${eventType}`;
}
