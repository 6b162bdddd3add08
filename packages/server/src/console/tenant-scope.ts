import { WalflowError, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

/** The role a tenant's operator reads as: a member of walflow_app (db/migrations/0012_console.sql). */
export const CONSOLE_ROLE = 'walflow_console';

/**
 * Runs reads for an operator. One fixed to a tenant reads in a read-only transaction as walflow_console —
 * neither superuser nor table owner — with walflow.tenant_id set for that transaction only, so the row-level
 * security policies applications live under decide what it sees. An operator of every tenant reads directly.
 */
export async function readInScope<T>(db: Kysely<WalflowDatabase>, tenant: string | null, read: (db: Kysely<WalflowDatabase>) => Promise<T>): Promise<T> {
  if (tenant === null) return read(db);
  return db
    .transaction()
    .setAccessMode('read only')
    .execute(async (trx) => {
      await sql`SET LOCAL ROLE ${sql.id(CONSOLE_ROLE)}`.execute(trx);
      await sql`SELECT set_config('walflow.tenant_id', ${tenant}, true)`.execute(trx);
      return read(trx);
    });
}

/** Tenant tokens need walflow to be able to switch to walflow_console: say so at start, not at the first page. */
export async function assertCanScopeTenants(db: Kysely<WalflowDatabase>): Promise<void> {
  const { rows } = await sql<{ role_exists: boolean; member: boolean | null; user: string }>`
    SELECT to_regrole(${CONSOLE_ROLE}) IS NOT NULL AS role_exists,
           CASE WHEN to_regrole(${CONSOLE_ROLE}) IS NOT NULL THEN pg_has_role(current_user, ${CONSOLE_ROLE}, 'MEMBER') END AS member,
           current_user AS user`.execute(db);
  const row = rows[0]!;
  if (!row.role_exists) throw new WalflowError('config_invalid', `WALFLOW_CONSOLE_TOKENS needs the ${CONSOLE_ROLE} role: run walflow migrate`);
  if (!row.member) {
    throw new WalflowError('config_invalid', `WALFLOW_CONSOLE_TOKENS needs ${row.user} to be a member of ${CONSOLE_ROLE}: GRANT ${CONSOLE_ROLE} TO ${row.user}`);
  }
}
