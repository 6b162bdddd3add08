import { CompiledQuery } from 'kysely';

/**
 * Rows in the text format of `COPY … FROM STDIN`: one line per row, columns separated by tabs, `\N` for null.
 * Strings are escaped only when they hold a backslash, tab, newline or carriage return; objects are written as
 * their JSON (for json and jsonb columns), booleans as t and f.
 */
export function copyText(rows: readonly (readonly unknown[])[]): string {
  let text = '';
  for (const row of rows) {
    for (let column = 0; column < row.length; column++) {
      if (column > 0) text += '\t';
      text += copyField(row[column]);
    }
    text += '\n';
  }
  return text;
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
 * `COPY table (columns) FROM STDIN` with its rows as the one parameter. Only a connection that takes such a
 * statement can run it (see the server's `createDatabase`); any other refuses it, since COPY takes no parameters.
 */
export function copyRows(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): CompiledQuery {
  return CompiledQuery.raw(`COPY ${table} (${columns.join(', ')}) FROM STDIN`, [copyText(rows)]);
}

/** The rows of a statement made by copyRows, or null for any other statement. */
export function rowsToCopy(text: string, values: readonly unknown[] | undefined): string | null {
  return text.startsWith('COPY ') && text.endsWith(' FROM STDIN') && values?.length === 1 && typeof values[0] === 'string' ? values[0] : null;
}
