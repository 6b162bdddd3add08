import type { Kysely } from 'kysely';

/** A pg `Client` or `PoolClient` inside the caller's transaction. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** Where emit writes: the caller's Kysely transaction (or Kysely instance), or a pg client. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any application database type is accepted
export type OutboxWriter = Kysely<any> | PgQueryable;

export function isKysely(writer: OutboxWriter): writer is Exclude<OutboxWriter, PgQueryable> {
  return typeof (writer as Partial<Kysely<never>>).executeQuery === 'function';
}
