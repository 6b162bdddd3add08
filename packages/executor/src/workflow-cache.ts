import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import { getWorkflowsById, type ReadWorkflow } from './workflow-store.js';

/**
 * Workflows by id as of a `walflow.workflow_revision`, which every change of a definition or status moves. A
 * worker reads the revision in its claim's statement and asks here: only workflows not yet seen at that
 * revision cost a query. What a query returns may be newer than the revision asked for, never older, so a
 * cached workflow is at least as new as the claim that uses it. Shared by a pool's workers; revisions only
 * move forward, and a caller behind the cache's revision reads past it.
 */
export class WorkflowCache {
  private revision: bigint | null = null;
  private readonly byId = new Map<string, ReadWorkflow>();

  async get(db: Kysely<WalflowDatabase>, ids: readonly string[], revision: string): Promise<Map<string, ReadWorkflow>> {
    const asked = BigInt(revision);
    if (this.revision !== null && asked < this.revision) return getWorkflowsById(db, ids);
    if (asked !== this.revision) {
      this.byId.clear();
      this.revision = asked;
    }
    const missing = ids.filter((id) => !this.byId.has(id));
    const fetched = await getWorkflowsById(db, missing);
    // Another worker may have moved the cache to a later revision meanwhile: what was fetched is kept only at its own.
    if (this.revision === asked) for (const [id, workflow] of fetched) this.byId.set(id, workflow);
    const found = new Map<string, ReadWorkflow>();
    for (const id of ids) {
      const workflow = fetched.get(id) ?? this.byId.get(id);
      if (workflow) found.set(id, workflow);
    }
    return found;
  }
}
