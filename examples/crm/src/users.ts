import type { Kysely, Selectable } from 'kysely';
import { assertEmailAddress } from './email-address.js';
import { outbox } from './crm-outbox.js';
import { inTransaction } from './in-transaction.js';
import type { CrmDatabase, UserRole, UsersTable } from './schema.js';
import { TENANT } from './tenant.js';

export type User = Selectable<UsersTable>;

/** A new user; no event (the agency's workflows do not react to it). Refuses an address events cannot carry. */
export async function createUser(db: Kysely<CrmDatabase>, user: { name: string; email: string; role: UserRole }): Promise<User> {
  return db.insertInto('crm.users').values({ ...user, email: assertEmailAddress(user.email) }).returningAll().executeTakeFirstOrThrow();
}

/** Records a sign-in → `user.login`, with the role the user had at that moment. */
export async function recordLogin(db: Kysely<CrmDatabase>, userId: string, from: { ip: string }): Promise<User> {
  return inTransaction(db, async (trx) => {
    const user = await trx
      .updateTable('crm.users')
      .set({ last_login_at: new Date() })
      .where('id', '=', userId)
      .returningAll()
      .executeTakeFirst();
    if (user === undefined) throw new Error(`no user ${userId}`);
    await outbox.emit(trx, {
      type: 'user.login',
      tenantId: TENANT,
      aggregateType: 'user',
      aggregateId: user.id,
      actorId: user.id,
      payload: { userId: user.id, email: user.email, role: user.role, ip: from.ip },
    });
    return user;
  });
}
