import type { WalflowDatabase } from '@walflow/core';
import { isUnreadable, listWorkflows, policyRefusal, type WorkflowPolicy } from '@walflow/executor';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * Warns, as workers start, of every active or paused workflow this process's policy refuses: its runs would fail
 * here (WALFLOW_UPDATE_FIELDS is checked again before each run), and a process set up as the README once had it,
 * with the list only where workflows are applied, would otherwise find out run by run, dead by dead.
 */
export async function warnOfRefusedWorkflows(db: Kysely<WalflowDatabase>, policy: WorkflowPolicy, logger: Logger): Promise<void> {
  try {
    for (const workflow of await listWorkflows(db)) {
      if (isUnreadable(workflow) || workflow.status === 'disabled') continue;
      const refusal = policyRefusal(workflow.definition, policy);
      if (refusal !== undefined) {
        logger.warn({ tenant: workflow.tenantId, workflow: workflow.name, refusal }, `this process's workers will fail the runs of ${workflow.name}: ${refusal}`);
      }
    }
  } catch (error) {
    logger.warn({ err: error }, "could not check the workflows against this process's WALFLOW_UPDATE_FIELDS");
  }
}
