import type { WorkflowAction } from '../workflow-definition.js';
import type { TransactionalActionContext } from './action.js';
import { createNotificationAction } from './create-notification.js';
import { emitEventAction } from './emit-event.js';
import type { ExternalActionContext } from './external-action.js';
import { sendEmailAction } from './send-email.js';
import { updateFieldAction } from './update-field.js';
import { webhookAction } from './webhook.js';

export type ActionPlan =
  | { kind: 'transactional'; perform(context: TransactionalActionContext): Promise<Record<string, unknown>> }
  | { kind: 'external'; perform(context: ExternalActionContext): Promise<Record<string, unknown>> };

/** The action types planAction carries out outside the database (mail, HTTP). */
export const CALLING_OUT_ACTION_TYPES: readonly WorkflowAction['type'][] = ['send_email', 'webhook'];

/** How one action of a workflow is carried out: inside the outcome's transaction, or outside it. */
export function planAction(action: WorkflowAction): ActionPlan {
  switch (action.type) {
    case 'emit_event':
      return { kind: 'transactional', perform: (context) => emitEventAction(action, context) };
    case 'create_notification':
      return { kind: 'transactional', perform: (context) => createNotificationAction(action, context) };
    case 'update_field':
      return { kind: 'transactional', perform: (context) => updateFieldAction(action, context) };
    case 'send_email':
      return { kind: 'external', perform: (context) => sendEmailAction.execute(action, context) };
    case 'webhook':
      return { kind: 'external', perform: (context) => webhookAction.execute(action, context) };
  }
}
