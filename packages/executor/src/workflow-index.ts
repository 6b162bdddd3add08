import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import { compileWorkflow } from './compile-workflow.js';
import type { IndexedWorkflow } from './decide.js';
import { listWorkflows, type StoredWorkflow } from './workflow-store.js';

/**
 * The workflows by tenant and trigger, compiled, held in memory. A statement trigger bumps
 * `walflow.workflow_revision` on every change; the dispatcher reads it inside each batch's transaction and
 * reloads only when it moved, so a pause takes effect for the very next event without a restart.
 */
export class WorkflowIndex {
  private revision: string | null = null;
  private exact = new Map<string, IndexedWorkflow[]>();
  private prefixes = new Map<string, { prefix: string; workflow: IndexedWorkflow }[]>();

  /** Workflows of this tenant whose trigger matches the event type (exact, `prefix.*` or `*`), disabled excluded. */
  match(tenantId: string, eventType: string): IndexedWorkflow[] {
    const matched = [...(this.exact.get(`${tenantId}\u0000${eventType}`) ?? [])];
    for (const { prefix, workflow } of this.prefixes.get(tenantId) ?? []) {
      if (eventType.startsWith(prefix)) matched.push(workflow);
    }
    return matched;
  }

  /** Reloads the workflows if their revision moved; `revision`, when the caller has just read it, spares the query. */
  async refresh(db: Kysely<WalflowDatabase>, revision: string | null = null): Promise<void> {
    const current = revision ?? (await db.selectFrom('walflow.workflow_revision').select('revision').executeTakeFirstOrThrow()).revision;
    if (current === this.revision) return;
    this.load(await listWorkflows(db));
    this.revision = current;
  }

  /** An index of these workflows alone, never refreshed: a backtest's candidate. */
  static of(workflows: readonly StoredWorkflow[]): WorkflowIndex {
    const index = new WorkflowIndex();
    index.load(workflows);
    return index;
  }

  private load(workflows: readonly StoredWorkflow[]): void {
    const exact = new Map<string, IndexedWorkflow[]>();
    const prefixes = new Map<string, { prefix: string; workflow: IndexedWorkflow }[]>();
    for (const stored of workflows) {
      if (stored.status === 'disabled') continue;
      const workflow: IndexedWorkflow = { ...stored, compiled: compileWorkflow(stored.definition) };
      const trigger = stored.triggerEvent;
      if (trigger.endsWith('*')) {
        const list = prefixes.get(stored.tenantId) ?? [];
        list.push({ prefix: trigger.slice(0, -1), workflow });
        prefixes.set(stored.tenantId, list);
      } else {
        const key = `${stored.tenantId}\u0000${trigger}`;
        exact.set(key, [...(exact.get(key) ?? []), workflow]);
      }
    }
    this.exact = exact;
    this.prefixes = prefixes;
  }
}
