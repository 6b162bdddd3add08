import { SqlState, sqlStateOf, WalflowError } from '@walflow/core';
import { sql } from 'kysely';
import { findsItsPath, renderTemplate } from '../template.js';
import type { UpdateFieldAction } from '../workflow-definition.js';
import type { TransactionalAction } from './action.js';

/**
 * Sets, or increments, one column of one row of an allow-listed application table (checked when the
 * workflow was applied). The UPDATE runs as walflow_update_field, through walflow.update_field() (migration
 * 0045): the table's triggers and policies run with that role's privileges, not walflow's. Values go as text,
 * cast there to their columns' types.
 */
export const updateFieldAction: TransactionalAction<UpdateFieldAction> = async (action, { event, trx }) => {
  const [schema, table] = action.table.split('.') as [string, string];
  const keyValue = renderTemplate(action.key.value, event);
  if (keyValue === null || keyValue === undefined || keyValue === '') {
    throw new WalflowError('action_failed', `update_field: the key ${action.key.column} rendered empty`);
  }
  let newValue: string | null = null;
  let increment: string | null = null;
  if (action.increment !== undefined) {
    increment = String(incrementOf(renderTemplate(action.increment, event)));
  } else {
    const value = renderTemplate(action.value, event);
    // A template that found nothing in the event renders null: writing it would clear the column unasked.
    if (typeof action.value === 'string' && !findsItsPath(action.value, event)) {
      throw new WalflowError('action_failed', `update_field: value ${JSON.stringify(action.value)} rendered to nothing (the event has no value there); write null in the workflow to clear ${action.column}`);
    }
    newValue = asText(value);
  }
  const tenantColumn = action.tenantColumn ?? null;
  let updated: number;
  try {
    const { rows } = await sql<{ updated: string }>`
      SELECT walflow.update_field(${schema}, ${table}, ${action.column}, ${action.key.column}, ${asText(keyValue)},
                                  ${tenantColumn}, ${tenantColumn === null ? null : event.tenantId}, ${newValue}, ${increment}) AS updated`.execute(trx);
    updated = Number(rows[0]!.updated);
  } catch (error) {
    if (sqlStateOf(error) !== SqlState.insufficientPrivilege) throw error;
    throw new WalflowError(
      'action_failed',
      `update_field: ${(error as Error).message}; update_field writes as walflow_update_field: GRANT USAGE ON SCHEMA ${schema} TO walflow_update_field; GRANT SELECT, UPDATE ON ${action.table} TO walflow_update_field`,
    );
  }
  if (updated !== 1) {
    const tenant = action.tenantColumn === undefined ? '' : ` and ${action.tenantColumn} = ${JSON.stringify(event.tenantId)}`;
    throw new WalflowError('action_failed', `update_field: expected one row of ${action.table} with ${action.key.column} = ${JSON.stringify(keyValue)}${tenant}, found ${updated}`);
  }
  return { table: action.table, column: action.column, key: keyValue };
};

/** A rendered value as the text a column's input function reads, as node-postgres writes a parameter. */
function asText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  // Rendered values are JSON: objects and arrays go as their JSON, strings, numbers and booleans as themselves.
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

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
