import { RUN_EVENT_TYPES, storableText, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { emitCaused } from '@walflow/outbox';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { causalMetadata } from './actions/causal-metadata.js';
import { inheritedAggregate } from './inherited-aggregate.js';
import { ERROR_CHARS, type ClaimedRun } from './run-queue.js';
import type { WorkflowAction } from './workflow-definition.js';
import type { StoredWorkflow } from './workflow-store.js';

/** What a follow-up event needs of the run that emits it. */
export type EmittingRun = Pick<ClaimedRun, 'id' | 'replayId' | 'event'>;

export interface RunDeath {
  run: EmittingRun;
  workflow: StoredWorkflow;
  /**
   * The action the run died on; undefined when it died after its last action, or when that action's success
   * committed after all (the worker lost the commit's answer).
   */
  failing: { index: number; action: WorkflowAction } | undefined;
  error: string;
}

/**
 * What follows a run's death, however it died (its last attempt failed, or its worker's lease ran out): the
 * `email.failed` event when it died on a `send_email`, and the workflow's count of dead runs in a row, which
 * pauses the workflow at its threshold. Call in the transaction that records the death.
 */
export async function recordDeath(trx: Transaction<WalflowDatabase>, death: RunDeath, logger: Logger): Promise<void> {
  const { run, workflow, failing, error } = death;
  if (failing?.action.type === 'send_email') {
    await emitCaused(trx, followUp(run, workflow, RUN_EVENT_TYPES.emailFailed, { error: storableText(error, ERROR_CHARS), actionIndex: failing.index }));
  }
  const row = await trx
    .updateTable('walflow.workflows')
    .set({ consecutive_failures: sql`consecutive_failures + 1` })
    .where('id', '=', workflow.id)
    .returning(['consecutive_failures', 'status'])
    .executeTakeFirst();
  const threshold = workflow.definition.autoPause.afterConsecutiveFailures;
  if (!row || row.status !== 'active' || row.consecutive_failures < threshold) return;
  const reason = `paused after ${row.consecutive_failures} consecutive dead runs; last error: ${storableText(error, 500)}`;
  await trx.updateTable('walflow.workflows').set({ status: 'paused', paused_reason: reason }).where('id', '=', workflow.id).execute();
  await emitCaused(
    trx,
    followUp(run, workflow, RUN_EVENT_TYPES.workflowAutoPaused, {
      workflowId: workflow.id,
      name: workflow.name,
      consecutiveFailures: row.consecutive_failures,
      lastError: storableText(error, 500),
    }),
  );
  logger.error({ workflow: workflow.name, tenant: workflow.tenantId, consecutiveFailures: row.consecutive_failures }, 'workflow paused automatically');
}

/** An event a run emits about itself (`email.sent`, `email.failed`, `workflow.auto_paused`), caused by its event. */
export function followUp(run: EmittingRun, workflow: StoredWorkflow, type: string, payload: Record<string, unknown>) {
  const cause: EventEnvelope = run.event;
  return {
    type,
    tenantId: cause.tenantId,
    payload: { ...payload, runId: run.id, workflowId: workflow.id, sourceEventId: cause.id },
    ...inheritedAggregate(cause),
    metadata: causalMetadata(cause, workflow.id, run.id, run.replayId),
  };
}
