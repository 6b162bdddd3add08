import { CompiledQuery } from 'kysely';
import { WalflowError } from './errors.js';
import { SqlState, sqlStateOf } from './sqlstate.js';

/**
 * Rows in the text format of `COPY … FROM STDIN`: one line per row, columns separated by tabs, `\N` for null.
 * Strings are escaped only when they hold a backslash, tab, newline or carriage return; objects are written as
 * their JSON (for json and jsonb columns), booleans as t and f.
 */
export function copyText(rows: readonly (readonly unknown[])[]): string {
  // Joined, not appended: `text +=` made a rope of two nodes per field, which a batch of 5,000 rows kept alive
  // while it grew (a tenth of walflow's allocations in a drain, copied by every young-generation collection).
  const lines = new Array<string>(rows.length + 1);
  for (let index = 0; index < rows.length; index++) {
    const row = rows[index]!;
    const fields = new Array<string>(row.length);
    for (let column = 0; column < row.length; column++) fields[column] = copyField(row[column]);
    lines[index] = fields.join('\t');
  }
  lines[rows.length] = '';
  return lines.join('\n');
}

/** What would end a field or a row, or start an escape: tested once, then replaced everywhere. */
const SPECIAL = /[\\\t\n\r]/;
const EVERY_SPECIAL = new RegExp(SPECIAL.source, 'g');
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return SPECIAL.test(text) ? text.replace(EVERY_SPECIAL, (character) => ESCAPED[character]!) : text;
}

/**
 * Runs `COPY table (columns) FROM STDIN` with these rows. The statement goes to the connection with its rows as
 * the one parameter, which only a connection that takes such statements streams (the server's
 * `createDatabase`); any other sends them as a parameter, which PostgreSQL refuses as a protocol violation, and
 * that is reported for what it is rather than as the lost connection its SQLSTATE class would suggest.
 */
export async function copyRows(db: { executeQuery: (query: CompiledQuery) => Promise<unknown> }, table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void> {
  try {
    await db.executeQuery(CompiledQuery.raw(`COPY ${table} (${columns.join(', ')}) FROM STDIN`, [copyText(rows)]));
  } catch (error) {
    if (sqlStateOf(error) !== SqlState.protocolViolation) throw error;
    throw new WalflowError('dispatch_failed', `COPY into ${table} needs a connection made by createDatabase (@walflow/server), which streams its rows`, { cause: error });
  }
}

/** The rows of a statement made by copyRows, or null for any other statement. */
export function rowsToCopy(text: string, values: readonly unknown[] | undefined): string | null {
  return text.startsWith('COPY ') && text.endsWith(' FROM STDIN') && values?.length === 1 && typeof values[0] === 'string' ? values[0] : null;
}
