import { WalflowError } from '@walflow/core';
import { CompiledQuery } from 'kysely';
import type { OutboxRow } from './outbox-row.js';
import { isKysely, type OutboxWriter } from './outbox-writer.js';

/** The protocol counts a statement's parameters in 16 bits: beyond this, PostgreSQL refuses it (08P01). */
const MAX_PARAMETERS = 65_535;
/** The most parameters one row binds: the columns of rowsStatement's tuple. */
const PARAMETERS_PER_ROW = 7;
const ROWS_PER_STATEMENT = Math.floor(MAX_PARAMETERS / PARAMETERS_PER_ROW);
/**
 * The most characters of payload and metadata one JSON-array statement takes. PostgreSQL reads a message of at
 * most 1 GB, and V8 makes strings of at most 2^29 characters; escaping can double the text and UTF-8 take three
 * bytes a character, so this keeps well inside both.
 */
const MAX_STATEMENT_CHARACTERS = 128 * 1024 * 1024;

/**
 * Every row in ONE statement, so that the rows commit or roll back together on any writer: with the caller's
 * transaction, and also through a Kysely instance or a pg client that is not in one, or through
 * `db.connection()` inside a `BEGIN` the caller sent (no statement of emit's may commit or end it).
 *
 * The SQL text is built by hand, not compiled by Kysely: emit sits in the application's hottest transactions,
 * where the per-call compile and RETURNING showed in `pnpm bench` (write overhead). No RETURNING: the ids are
 * made by toOutboxRow, so the row is never read back, and for walflow_app the SELECT policy (a SECURITY DEFINER
 * lookup per row, about 60 µs) no longer runs.
 */
export async function insertOutboxRows(writer: OutboxWriter, rows: readonly OutboxRow[]): Promise<string[]> {
  // No statement at all: `VALUES` with nothing after it is a syntax error, which would abort the caller's transaction.
  if (rows.length === 0) return [];
  const { text, values } = rows.length <= ROWS_PER_STATEMENT ? rowsStatement(rows) : jsonArrayStatement(rows);
  if (isKysely(writer)) await writer.executeQuery(CompiledQuery.raw(text, values));
  else await writer.query(text, values);
  return rows.map((row) => row.id);
}

/** A parameter per value: the cheapest for the one event of nearly every emit. A row without a tenant takes the column default. */
function rowsStatement(rows: readonly OutboxRow[]): { text: string; values: unknown[] } {
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

/**
 * Beyond ROWS_PER_STATEMENT rows, one parameter: the rows as a JSON array of arrays, inserted in their order.
 * Payload and metadata travel as the JSON text they were checked as. A row without a tenant takes the session's
 * walflow.tenant_id, else 'default': the column default (migration 0005), which INSERT … SELECT cannot name per row.
 */
function jsonArrayStatement(rows: readonly OutboxRow[]): { text: string; values: unknown[] } {
  const characters = rows.reduce((sum, row) => sum + row.payload.length + row.metadata.length, 0);
  if (characters > MAX_STATEMENT_CHARACTERS) {
    throw new WalflowError(
      'payload_invalid',
      `emitMany of ${rows.length} events holds ${characters} characters of payload and metadata, more than one statement takes (${MAX_STATEMENT_CHARACTERS}): emit them in several calls inside your transaction`,
    );
  }
  const array = rows.map((row) => [row.id, row.event_type, row.aggregate_type, row.aggregate_id, row.payload, row.metadata, row.tenant_id ?? null]);
  const text = `INSERT INTO walflow.outbox (id, event_type, aggregate_type, aggregate_id, payload, metadata, tenant_id)
    SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, (r->>4)::jsonb, (r->>5)::jsonb,
           coalesce(r->>6, nullif(current_setting('walflow.tenant_id', true), ''), 'default')
      FROM json_array_elements($1::json) WITH ORDINALITY AS row_list(r, n) ORDER BY n`;
  return { text, values: [JSON.stringify(array)] };
}
