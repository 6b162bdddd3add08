import { WALFLOW_SEARCH_PATH, WalflowError } from '@walflow/core';
import { sql } from 'kysely';
import { findsItsPath, renderTemplate } from '../template.js';
import type { UpdateFieldAction } from '../workflow-definition.js';
import type { TransactionalAction } from './action.js';
import { causalMetadata } from './causal-metadata.js';

/**
 * Sets, or increments, one column of one row of an allow-listed application table (checked when the
 * workflow was applied). Identifiers were validated by the schema and are quoted; values are parameters.
 */
export const updateFieldAction: TransactionalAction<UpdateFieldAction> = async (action, { event, workflow, runId, replayId, trx }) => {
  const [schema, table] = action.table.split('.') as [string, string];
  const target = sql.id(schema, table);
  const column = sql.id(action.column);
  const keyValue = renderTemplate(action.key.value, event);
  if (keyValue === null || keyValue === undefined || keyValue === '') {
    throw new WalflowError('action_failed', `update_field: the key ${action.key.column} rendered empty`);
  }
  let assignment;
  if (action.increment !== undefined) {
    assignment = sql`${column} = coalesce(${column}, 0) + ${incrementOf(renderTemplate(action.increment, event))}`;
  } else {
    const value = renderTemplate(action.value, event);
    // A template that found nothing in the event renders null: writing it would clear the column unasked.
    if (typeof action.value === 'string' && !findsItsPath(action.value, event)) {
      throw new WalflowError('action_failed', `update_field: value ${JSON.stringify(action.value)} rendered to nothing (the event has no value there); write null in the workflow to clear ${action.column}`);
    }
    assignment = sql`${column} = ${typeof value === 'object' && value !== null ? JSON.stringify(value) : value}`;
  }
  const inTenant = action.tenantColumn === undefined ? sql`` : sql` AND ${sql.id(action.tenantColumn)} = ${event.tenantId}`;
  // The table's triggers, and the operators of its columns' types (citext's, say), are the application's, written
  // for a search path with its schemas: the UPDATE runs with the one walflow's session started with (what RESET
  // gives: its role's or the database's default). An event a trigger emits meanwhile is the run's tenant's unless it
  // names one, and then continues this run's chain (walflow.cause, migration 0048), so the loop guard and the depth
  // limit stop a workflow whose update sets itself off again; not with the run's workflowId and runId, which mark
  // what a run emitted itself. A deferred trigger's event, emitted at commit, begins a chain of its own. Afterwards
  // the three are set again for the session, not the transaction, so that a trigger's own plain SET of one does not
  // outlast the commit on walflow's connection; a failure rolls them all back.
  const { workflowId: _workflowId, runId: _runId, ...chain } = causalMetadata(event, workflow.id, runId, replayId);
  const { rows } = await sql<{ tenant: string | null }>`
    SELECT before.tenant,
           pg_catalog.set_config('search_path', (SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path'), true),
           pg_catalog.set_config('walflow.cause', ${JSON.stringify(chain)}, true),
           pg_catalog.set_config('walflow.tenant_id', ${event.tenantId}, true)
      FROM (SELECT pg_catalog.current_setting('walflow.tenant_id', true) AS tenant OFFSET 0) AS before`.execute(trx);
  const result = await sql`UPDATE ${target} SET ${assignment} WHERE ${sql.id(action.key.column)} = ${keyValue}${inTenant}`.execute(trx);
  await sql`SELECT pg_catalog.set_config('search_path', ${WALFLOW_SEARCH_PATH}, false), pg_catalog.set_config('walflow.cause', '', false),
                   pg_catalog.set_config('walflow.tenant_id', ${rows[0]?.tenant ?? ''}, false)`.execute(trx);
  const updated = Number(result.numAffectedRows ?? 0n);
  if (updated !== 1) {
    const tenant = action.tenantColumn === undefined ? '' : ` and ${action.tenantColumn} = ${JSON.stringify(event.tenantId)}`;
    throw new WalflowError('action_failed', `update_field: expected one row of ${action.table} with ${action.key.column} = ${JSON.stringify(keyValue)}${tenant}, found ${updated}`);
  }
  return { table: action.table, column: action.column, key: keyValue };
};

/** A decimal number written out in full or with an exponent, as JSON and PostgreSQL write numbers. */
const NUMBER_TEXT = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/**
 * A number, or text that is one: Number() would take a missing value (null), '', true or [7] for 0, 1 or 7, and
 * the run would succeed having added the wrong amount.
 */
function incrementOf(rendered: unknown): number {
  const amount = typeof rendered === 'number' ? rendered : typeof rendered === 'string' && NUMBER_TEXT.test(rendered) ? Number(rendered) : Number.NaN;
  if (!Number.isFinite(amount)) throw new WalflowError('action_failed', `update_field: increment rendered to ${JSON.stringify(rendered) ?? 'nothing'}, not a number`);
  return amount;
}
