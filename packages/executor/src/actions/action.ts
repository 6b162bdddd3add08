import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import type { Transaction } from 'kysely';
import type { WorkflowAction } from '../workflow-definition.js';
import type { StoredWorkflow } from '../workflow-store.js';

export interface ActionContext {
  event: EventEnvelope;
  workflow: StoredWorkflow;
  runId: string;
  /** The transaction that marks the run succeeded: database effects commit with it, or not at all. */
  trx: Transaction<WalflowDatabase>;
}

export type ActionHandler<Action extends WorkflowAction = WorkflowAction> = (action: Action, context: ActionContext) => Promise<void>;
