import { WalflowError } from '@walflow/core';
import { sql, type QueryExecutorProvider } from 'kysely';
import { OUTBOX_PUBLICATION, OUTBOX_SCHEMA, OUTBOX_TABLE } from './outbox-stream.js';

/**
 * A pgoutput slot streams what the publication publishes, as of each change: with the outbox dropped from it, its
 * inserts no longer published, or a row filter or column list put on it, outbox rows are left out of the stream
 * while the session looks healthy, and the slot moves past their commits. So a session does not start then: the
 * consumer is down, saying what to run. (Rows the slot passed meanwhile need `walflow repair`.)
 */
export async function assertOutboxPublished(db: QueryExecutorProvider): Promise<void> {
  // The row filter and column list (prqual, prattrs) exist from PostgreSQL 15: read through jsonb, which has no
  // such key on older servers.
  const { rows } = await sql<{ inserts: boolean; published: boolean; narrowed: boolean }>`
    SELECT p.pubinsert AS inserts,
           EXISTS (SELECT FROM pg_publication_tables t WHERE t.pubname = p.pubname AND t.schemaname = ${OUTBOX_SCHEMA} AND t.tablename = ${OUTBOX_TABLE}) AS published,
           EXISTS (SELECT FROM pg_publication_rel r
                    WHERE r.prpubid = p.oid AND r.prrelid = ${`${OUTBOX_SCHEMA}.${OUTBOX_TABLE}`}::regclass
                      AND (to_jsonb(r) ->> 'prqual' IS NOT NULL OR to_jsonb(r) ->> 'prattrs' IS NOT NULL)) AS narrowed
      FROM pg_publication p WHERE p.pubname = ${OUTBOX_PUBLICATION}`.execute(db);
  const publication = rows[0];
  const problem =
    publication === undefined
      ? `publication ${OUTBOX_PUBLICATION} is gone`
      : !publication.published
        ? `publication ${OUTBOX_PUBLICATION} no longer holds ${OUTBOX_SCHEMA}.${OUTBOX_TABLE}`
        : !publication.inserts
          ? `publication ${OUTBOX_PUBLICATION} no longer publishes inserts`
          : publication.narrowed
            ? `publication ${OUTBOX_PUBLICATION} publishes ${OUTBOX_SCHEMA}.${OUTBOX_TABLE} with a row filter or a column list`
            : undefined;
  if (problem === undefined) return;
  throw new WalflowError(
    'config_invalid',
    `${problem}, so the pgoutput slot would stream no outbox row, or not all of one: restore it (ALTER PUBLICATION ${OUTBOX_PUBLICATION} SET TABLE ${OUTBOX_SCHEMA}.${OUTBOX_TABLE}; ALTER PUBLICATION ${OUTBOX_PUBLICATION} SET (publish = 'insert'); or \`walflow migrate\` if it is gone), then run \`walflow repair\` for the rows the slot passed meanwhile`,
  );
}
