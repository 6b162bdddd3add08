import { CompiledQuery } from 'kysely';
import type { OutboxRow } from './outbox-row.js';
import { isKysely, type OutboxWriter } from './outbox-writer.js';

/** The protocol counts a statement's parameters in 16 bits: beyond this, PostgreSQL refuses it (08P01). */
const MAX_PARAMETERS = 65_535;
/** The most parameters one row binds: the columns of insertStatement's tuple. */
const PARAMETERS_PER_ROW = 7;
const ROWS_PER_STATEMENT = Math.floor(MAX_PARAMETERS / PARAMETERS_PER_ROW);

/**
 * The SQL text is built by hand, not compiled by Kysely: emit sits in the application's hottest transactions,
 * where the per-call compile and RETURNING showed in `pnpm bench` (write overhead). One statement for up to
 * ROWS_PER_STATEMENT rows, the next ones in the statements after it, on the same writer: inside the caller's
 * transaction, they commit or roll back together. A row without a tenant takes the column default. No RETURNING:
 * the ids are made by toOutboxRow, so the row is never read back, and for walflow_app the SELECT policy (a
 * SECURITY DEFINER lookup per row, about 60 µs) no longer runs.
 */
export async function insertOutboxRows(writer: OutboxWriter, rows: readonly OutboxRow[]): Promise<string[]> {
  // Several statements through a Kysely instance would each commit on their own: they share a transaction.
  if (rows.length > ROWS_PER_STATEMENT && isKysely(writer) && !writer.isTransaction) {
    return writer.transaction().execute((trx) => insertOutboxRows(trx, rows));
  }
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    const { text, values } = insertStatement(rows.slice(start, start + ROWS_PER_STATEMENT));
    if (isKysely(writer)) await writer.executeQuery(CompiledQuery.raw(text, values));
    else await writer.query(text, values);
  }
  return rows.map((row) => row.id);
}

function insertStatement(rows: readonly OutboxRow[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const parameter = (value: unknown): string => {
    values.push(value);
    return `$${values.length}`;
  };
  const tuples = rows.map((row) => {
    const tenant = row.tenant_id === undefined ? 'DEFAULT' : parameter(row.tenant_id);
    return `(${parameter(row.id)}, ${parameter(row.event_type)}, ${parameter(row.aggregate_type)}, ${parameter(row.aggregate_id)}, ${parameter(row.payload)}::jsonb, ${parameter(row.metadata)}::jsonb, ${tenant})`;
  });
  const text = `INSERT INTO walflow.outbox (id, event_type, aggregate_type, aggregate_id, payload, metadata, tenant_id) VALUES ${tuples.join(', ')}`;
  return { text, values };
}
