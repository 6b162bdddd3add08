import type { EventCatalog, WalflowDatabase } from '@walflow/core';
import { isUnreadable, listWorkflows } from '@walflow/executor';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * Warns, as a consumer with a catalog starts, of every active or paused workflow whose `emit_event` names a type
 * the catalog does not list: the consumer parks each such event as `event_unknown`, while the action that wrote
 * it succeeded, so nothing else would say. (The events a run emits about itself, `email.sent` and the like, are
 * walflow's and pass whatever the catalog lists.)
 */
export async function warnOfUncataloguedEmits(db: Kysely<WalflowDatabase>, catalog: EventCatalog, logger: Logger): Promise<void> {
  try {
    for (const workflow of await listWorkflows(db)) {
      if (isUnreadable(workflow) || workflow.status === 'disabled') continue;
      for (const action of workflow.definition.actions) {
        if (action.type !== 'emit_event' || catalog.has(action.event)) continue;
        logger.warn(
          { tenant: workflow.tenantId, workflow: workflow.name, eventType: action.event },
          `${workflow.name} emits ${action.event}, which the catalog (WALFLOW_CATALOG) does not list: each one will be parked as event_unknown`,
        );
      }
    }
  } catch (error) {
    logger.warn({ err: error }, "could not check the workflows' emitted events against the catalog");
  }
}
