import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import { compileWorkflow } from './compile-workflow.js';
import type { IndexedWorkflow } from './decide.js';
import { isUnreadable, listWorkflows, type ReadWorkflow, type UnreadableWorkflow } from './workflow-store.js';

/** A workflow as the index holds it: compiled, or what could not be read or compiled of it. */
export type MatchedWorkflow = IndexedWorkflow | UnreadableWorkflow;

/**
 * The workflows by tenant and trigger, compiled: one revision of them, never changed once built.
 * CurrentWorkflows hands each batch the index of the revision its transaction read.
 */
export class WorkflowIndex {
  private readonly exact = new Map<string, MatchedWorkflow[]>();
  private readonly prefixes = new Map<string, { prefix: string; workflow: MatchedWorkflow }[]>();

  private constructor(workflows: readonly ReadWorkflow[]) {
    for (const stored of workflows) {
      if (stored.status === 'disabled') continue;
      // Read rows compiled once already (readWorkflow): one that did not is held as unreadable.
      const workflow: MatchedWorkflow = isUnreadable(stored) ? stored : { ...stored, compiled: compileWorkflow(stored.definition) };
      const trigger = stored.triggerEvent;
      if (trigger.endsWith('*')) {
        const list = this.prefixes.get(stored.tenantId) ?? [];
        list.push({ prefix: trigger.slice(0, -1), workflow });
        this.prefixes.set(stored.tenantId, list);
      } else {
        const key = `${stored.tenantId}\u0000${trigger}`;
        this.exact.set(key, [...(this.exact.get(key) ?? []), workflow]);
      }
    }
  }

  /** An index of these workflows: a revision's, or a backtest's candidates. */
  static of(workflows: readonly ReadWorkflow[]): WorkflowIndex {
    return new WorkflowIndex(workflows);
  }

  /** Workflows of this tenant whose trigger matches the event type (exact, `prefix.*` or `*`), disabled excluded. */
  match(tenantId: string, eventType: string): MatchedWorkflow[] {
    const matched = [...(this.exact.get(`${tenantId}\u0000${eventType}`) ?? [])];
    for (const { prefix, workflow } of this.prefixes.get(tenantId) ?? []) {
      if (eventType.startsWith(prefix)) matched.push(workflow);
    }
    return matched;
  }
}

/**
 * The workflows' latest index, kept in memory. A statement trigger bumps `walflow.workflow_revision` on every
 * change; the dispatcher reads it inside each batch's transaction and reloads only when it moved, so a pause
 * takes effect for the very next event without a restart. Two batches in flight may ask at once: each gets an
 * index at least as new as the revision it read, whichever of their loads finishes last, and the one kept for
 * later is the newest.
 */
export class CurrentWorkflows {
  private latest: { revision: bigint; index: WorkflowIndex } | null = null;

  /** The index of `revision` or newer; `revision`, when the caller has just read it, spares the query. */
  async at(db: Kysely<WalflowDatabase>, revision: string | null = null): Promise<WorkflowIndex> {
    const wanted = BigInt(revision ?? (await db.selectFrom('walflow.workflow_revision').select('revision').executeTakeFirstOrThrow()).revision);
    if (this.latest !== null && this.latest.revision >= wanted) return this.latest.index;
    // Read after the revision, in a statement of its own: as new as `wanted`, or newer.
    const index = WorkflowIndex.of(await listWorkflows(db));
    if (this.latest === null || this.latest.revision < wanted) this.latest = { revision: wanted, index };
    return index;
  }
}
