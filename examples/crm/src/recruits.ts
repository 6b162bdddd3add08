import { createOutbox } from '@walflow/outbox';
import { sql, type Kysely } from 'kysely';
import { catalog } from './catalog.js';

const outbox = createOutbox(catalog);

export const TENANT = 'agency';

export async function createRecruitsTable<DB>(db: Kysely<DB>): Promise<void> {
  await sql`CREATE SCHEMA IF NOT EXISTS crm`.execute(db);
  await sql`CREATE TABLE IF NOT EXISTS crm.recruits (id text PRIMARY KEY, name text NOT NULL, phase text NOT NULL)`.execute(db);
}

/**
 * The domain write and its event in one transaction: the event exists if and only if the phase change
 * committed. This is all application code does.
 */
export async function graduateRecruit<DB>(db: Kysely<DB>, recruit: { id: string; name: string }, options: { failAfterWrite?: boolean } = {}): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`INSERT INTO crm.recruits (id, name, phase) VALUES (${recruit.id}, ${recruit.name}, 'graduated')
              ON CONFLICT (id) DO UPDATE SET phase = 'graduated'`.execute(trx);
    await outbox.emit(trx, {
      type: 'recruit.graduated_to_agent',
      tenantId: TENANT,
      aggregateType: 'recruit',
      aggregateId: recruit.id,
      payload: { recruitId: recruit.id, name: recruit.name },
    });
    if (options.failAfterWrite) throw new Error(`graduation of ${recruit.name} failed after the write`);
  });
}
