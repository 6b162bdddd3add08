import { WalflowError } from '@walflow/core';
import { sql } from 'kysely';
import { renderTemplate } from '../template.js';
import type { UpdateFieldAction } from '../workflow-definition.js';
import type { TransactionalAction } from './action.js';

/**
 * Sets, or increments, one column of one row of an allow-listed application table (checked when the
 * workflow was applied). Identifiers were validated by the schema and are quoted; values are parameters.
 */
export const updateFieldAction: TransactionalAction<UpdateFieldAction> = async (action, { event, trx }) => {
  const [schema, table] = action.table.split('.') as [string, string];
  const target = sql.id(schema, table);
  const column = sql.id(action.column);
  const keyValue = renderTemplate(action.key.value, event);
  if (keyValue === null || keyValue === undefined || keyValue === '') {
    throw new WalflowError('action_failed', `update_field: the key ${action.key.column} rendered empty`);
  }
  let assignment;
  if (action.increment !== undefined) {
    const amount = Number(renderTemplate(action.increment, event));
    if (!Number.isFinite(amount)) throw new WalflowError('action_failed', `update_field: increment is not a number`);
    assignment = sql`${column} = coalesce(${column}, 0) + ${amount}`;
  } else {
    const value = renderTemplate(action.value, event);
    assignment = sql`${column} = ${typeof value === 'object' && value !== null ? JSON.stringify(value) : value}`;
  }
  const result = await sql`UPDATE ${target} SET ${assignment} WHERE ${sql.id(action.key.column)} = ${keyValue}`.execute(trx);
  const updated = Number(result.numAffectedRows ?? 0n);
  if (updated !== 1) {
    throw new WalflowError('action_failed', `update_field: expected one row of ${action.table} with ${action.key.column} = ${JSON.stringify(keyValue)}, found ${updated}`);
  }
  return { table: action.table, column: action.column, key: keyValue };
};
