import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import type { Transaction } from 'kysely';
import type { StoredWorkflow } from '../workflow-store.js';

export interface TransactionalActionContext {
  event: EventEnvelope;
  workflow: StoredWorkflow;
  runId: string;
  actionIndex: number;
  /** The replay the run belongs to, if any; events it emits carry it. */
  replayId: string | null;
  /** The transaction that records the action's outcome: its effects commit with it, exactly once. */
  trx: Transaction<WalflowDatabase>;
}

/** An action whose whole effect is a database write (events, notifications, field updates). */
export type TransactionalAction<Action> = (action: Action, context: TransactionalActionContext) => Promise<Record<string, unknown>>;

/** One action of one run, for actions that are carried out for many runs in one statement. */
export interface TransactionalActionCall<Action> {
  action: Action;
  context: Omit<TransactionalActionContext, 'trx'>;
}
