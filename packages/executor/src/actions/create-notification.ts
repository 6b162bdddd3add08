import { isJsonObject, type WalflowDatabase } from '@walflow/core';
import type { Transaction } from 'kysely';
import { renderTemplate } from '../template.js';
import type { CreateNotificationAction } from '../workflow-definition.js';
import type { TransactionalAction, TransactionalActionCall } from './action.js';

/** Writes a row to walflow.notifications for the application to show; one per (run, action). */
export const createNotificationAction: TransactionalAction<CreateNotificationAction> = async (action, { trx, ...context }) => {
  const [result] = await createNotifications(trx, [{ action, context }]);
  return result!;
};

/** createNotificationAction for many runs at once: one INSERT for all of them; results in the calls' order. */
export async function createNotifications(
  trx: Transaction<WalflowDatabase>,
  calls: readonly TransactionalActionCall<CreateNotificationAction>[],
): Promise<Record<string, unknown>[]> {
  const rows = await trx
    .insertInto('walflow.notifications')
    .values(
      calls.map(({ action, context: { event, workflow, runId, actionIndex } }) => {
        const text = (template: string): string => {
          const value = renderTemplate(template, event);
          // Nothing in the event (null) is no text, not the two characters "".
          return typeof value === 'string' ? value : value === null || value === undefined ? '' : JSON.stringify(value);
        };
        const data = renderTemplate(action.data, event);
        return {
          tenant_id: event.tenantId,
          recipient: text(action.recipient),
          title: text(action.title),
          body: text(action.body),
          data: JSON.stringify(isJsonObject(data) ? data : {}),
          workflow_id: workflow.id,
          run_id: runId,
          action_index: actionIndex,
        };
      }),
    )
    .returning(['id', 'recipient', 'run_id', 'action_index'])
    .execute();
  const byCall = new Map(rows.map((row) => [`${row.run_id}/${row.action_index}`, { notificationId: row.id, recipient: row.recipient }]));
  return calls.map(({ context }) => byCall.get(`${context.runId}/${context.actionIndex}`)!);
}
