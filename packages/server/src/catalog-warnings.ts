import { RUN_EVENT_TYPES, type EventCatalog, type WalflowDatabase } from '@walflow/core';
import { isUnreadable, listWorkflows, type WorkflowDefinition } from '@walflow/executor';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * What a workflow names that the catalog does not list, each as a sentence. A trigger of an exact type it does not
 * list never fires: no such event is recorded. An `emit_event` of a type it does not list writes events the
 * consumer parks as `event_unknown`, while the action that wrote them succeeded, so nothing else would say. (The
 * events a run emits about itself, `email.sent` and the like, are walflow's and pass whatever the catalog lists.)
 */
export function uncataloguedTypes(definition: WorkflowDefinition, catalog: EventCatalog): { eventType: string; problem: string }[] {
  const problems: { eventType: string; problem: string }[] = [];
  const trigger = definition.trigger.event;
  const walflows = new Set<string>(Object.values(RUN_EVENT_TYPES));
  if (!trigger.includes('*') && !walflows.has(trigger) && !catalog.has(trigger)) {
    problems.push({ eventType: trigger, problem: `${definition.name} is triggered by ${trigger}, which the catalog (WALFLOW_CATALOG) does not list: it will never fire` });
  }
  for (const action of definition.actions) {
    if (action.type !== 'emit_event' || catalog.has(action.event)) continue;
    problems.push({
      eventType: action.event,
      problem: `${definition.name} emits ${action.event}, which the catalog (WALFLOW_CATALOG) does not list: each one will be parked as event_unknown`,
    });
  }
  return problems;
}

/** Warns, as a consumer with a catalog starts, of what its active or paused workflows name that the catalog does not list. */
export async function warnOfUncataloguedTypes(db: Kysely<WalflowDatabase>, catalog: EventCatalog, logger: Logger): Promise<void> {
  try {
    for (const workflow of await listWorkflows(db)) {
      if (isUnreadable(workflow) || workflow.status === 'disabled') continue;
      for (const { eventType, problem } of uncataloguedTypes(workflow.definition, catalog)) {
        logger.warn({ tenant: workflow.tenantId, workflow: workflow.name, eventType }, problem);
      }
    }
  } catch (error) {
    logger.warn({ err: error }, "could not check the workflows' event types against the catalog");
  }
}
