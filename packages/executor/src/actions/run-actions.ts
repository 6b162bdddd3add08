import type { WorkflowAction } from '../workflow-definition.js';
import type { ActionContext } from './action.js';
import { emitEventAction } from './emit-event.js';

/** Runs a workflow's actions in order; the first failure fails the attempt. */
export async function runActions(actions: readonly WorkflowAction[], context: ActionContext): Promise<void> {
  for (const action of actions) {
    switch (action.type) {
      case 'emit_event':
        await emitEventAction(action, context);
        break;
    }
  }
}
