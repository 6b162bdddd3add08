import type { WalflowDatabase } from '@walflow/core';
import { isUnreadable, listWorkflows, policyRefusal, type WorkflowAction, type WorkflowPolicy } from '@walflow/executor';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * Warns, as workers start, of every active or paused workflow this process's policy refuses: its runs would fail
 * here (WALFLOW_UPDATE_FIELDS is checked again before each run), and a process set up as the README once had it,
 * with the list only where workflows are applied, would otherwise find out run by run, dead by dead.
 */
export async function warnOfRefusedWorkflows(db: Kysely<WalflowDatabase>, policy: WorkflowPolicy, logger: Logger): Promise<void> {
  try {
    for (const workflow of await listWorkflows(db)) {
      if (isUnreadable(workflow) || workflow.status === 'disabled') continue;
      const refusal = policyRefusal(workflow.definition, policy) ?? (await missingGrant(db, workflow.definition.actions));
      if (refusal !== undefined) {
        logger.warn({ tenant: workflow.tenantId, workflow: workflow.name, refusal }, `this process's workers will fail the runs of ${workflow.name}: ${refusal}`);
      }
    }
  } catch (error) {
    logger.warn({ err: error }, "could not check the workflows against this process's WALFLOW_UPDATE_FIELDS");
  }
}

/**
 * What walflow_update_field, the role update_field writes as (migration 0045), lacks on a table an update_field
 * action writes, as the GRANT that gives it; undefined when it lacks nothing. Column by column is the run's to say.
 */
async function missingGrant(db: Kysely<WalflowDatabase>, actions: readonly WorkflowAction[]): Promise<string | undefined> {
  for (const action of actions) {
    if (action.type !== 'update_field') continue;
    const [schema, table] = action.table.split('.') as [string, string];
    const { rows } = await sql<{ usage: boolean | null; select: boolean | null; update: boolean | null }>`
      SELECT has_schema_privilege('walflow_update_field', n.oid, 'USAGE') AS usage,
             has_any_column_privilege('walflow_update_field', c.oid, 'SELECT') AS select,
             has_any_column_privilege('walflow_update_field', c.oid, 'UPDATE') AS update
        FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = ${table}
       WHERE n.nspname = ${schema}`.execute(db);
    const [granted] = rows;
    if (granted === undefined || granted.select === null) return `${action.table} does not exist`;
    if (!granted.usage) return `update_field writes as walflow_update_field, which may not use schema ${schema}: GRANT USAGE ON SCHEMA ${schema} TO walflow_update_field`;
    if (!granted.select || !granted.update) return `update_field writes as walflow_update_field, which may not read and update ${action.table}: GRANT SELECT, UPDATE ON ${action.table} TO walflow_update_field`;
  }
  return undefined;
}
