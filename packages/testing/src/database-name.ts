import { randomBytes } from 'node:crypto';

/** PostgreSQL truncates identifiers longer than this, which would break uniqueness. */
const maxIdentifierLength = 63;

/** A fresh `<prefix>_<random>` name made only of [a-z0-9_], so it is safe to quote and to use as a slot name. */
export function randomDatabaseName(prefix = 'walflow_test', random: string = randomBytes(6).toString('hex')): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) {
    throw new Error(`Database name prefix must match [a-z_][a-z0-9_]*, got ${JSON.stringify(prefix)}`);
  }
  const name = `${prefix}_${random}`;
  if (name.length > maxIdentifierLength) {
    throw new Error(`Database name ${name} is longer than ${maxIdentifierLength} characters; use a shorter prefix`);
  }
  return name;
}

/** Quotes an identifier for SQL text (doubling embedded quotes). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
