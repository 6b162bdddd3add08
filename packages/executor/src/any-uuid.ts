import { sql, type RawBuilder } from 'kysely';

/** `= ANY($1::uuid[])` for a where clause: one array parameter for any number of ids, where `in` sends one per id. */
export function anyUuid(ids: readonly string[]): RawBuilder<string> {
  return sql<string>`ANY(${[...ids]}::uuid[])`;
}
