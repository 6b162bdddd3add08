import { isJsonObject } from '@walflow/core';
import { renderTemplate } from '../template.js';
import type { CreateNotificationAction } from '../workflow-definition.js';
import type { TransactionalAction } from './action.js';

/** Writes a row to walflow.notifications for the application to show; one per (run, action). */
export const createNotificationAction: TransactionalAction<CreateNotificationAction> = async (action, { event, workflow, runId, actionIndex, trx }) => {
  const text = (template: string): string => {
    const value = renderTemplate(template, event);
    return typeof value === 'string' ? value : JSON.stringify(value ?? '');
  };
  const data = renderTemplate(action.data, event);
  const row = await trx
    .insertInto('walflow.notifications')
    .values({
      tenant_id: event.tenantId,
      recipient: text(action.recipient),
      title: text(action.title),
      body: text(action.body),
      data: JSON.stringify(isJsonObject(data) ? data : {}),
      workflow_id: workflow.id,
      run_id: runId,
      action_index: actionIndex,
    })
    .returning(['id', 'recipient'])
    .executeTakeFirstOrThrow();
  return { notificationId: row.id, recipient: row.recipient };
};
