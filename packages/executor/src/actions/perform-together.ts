import type { WalflowDatabase } from '@walflow/core';
import type { Transaction } from 'kysely';
import type { CreateNotificationAction, WorkflowAction } from '../workflow-definition.js';
import type { TransactionalActionCall } from './action.js';
import { createNotifications } from './create-notification.js';
import { planAction } from './plan-action.js';

export interface PerformedAction {
  result: Record<string, unknown>;
  seconds: number;
}

/**
 * Performs transactional actions of different runs inside one transaction: notifications in one statement for
 * all of them, the other actions one by one. The caller passes at most one action per run, so each run still
 * performs its actions in order. Results come back in the calls' order.
 */
export async function performTogether(trx: Transaction<WalflowDatabase>, calls: readonly TransactionalActionCall<WorkflowAction>[]): Promise<PerformedAction[]> {
  const performed = new Array<PerformedAction>(calls.length);
  const notifications = calls.flatMap((call, position) => (call.action.type === 'create_notification' ? [{ call: call as TransactionalActionCall<CreateNotificationAction>, position }] : []));
  if (notifications.length > 0) {
    const started = performance.now();
    const results = await createNotifications(trx, notifications.map(({ call }) => call));
    const seconds = (performance.now() - started) / 1000 / notifications.length;
    notifications.forEach(({ position }, index) => (performed[position] = { result: results[index]!, seconds }));
  }
  for (const [position, { action, context }] of calls.entries()) {
    if (action.type === 'create_notification') continue;
    const plan = planAction(action);
    if (plan.kind !== 'transactional') throw new Error(`${action.type} is not a transactional action; its run must be executed on its own`);
    const started = performance.now();
    const result = await plan.perform({ ...context, trx });
    performed[position] = { result, seconds: (performance.now() - started) / 1000 };
  }
  return performed;
}
