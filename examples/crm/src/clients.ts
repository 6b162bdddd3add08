import type { Kysely, Selectable } from 'kysely';
import { assertEmailAddress } from './email-address.js';
import type { ClientsTable, CrmDatabase } from './schema.js';

export type Client = Selectable<ClientsTable>;

/** A new client of the agency; no event (policies carry their client in theirs). Refuses an address events cannot carry. */
export async function createClient(db: Kysely<CrmDatabase>, client: { name: string; email: string }): Promise<Client> {
  return db.insertInto('crm.clients').values({ ...client, email: assertEmailAddress(client.email) }).returningAll().executeTakeFirstOrThrow();
}
