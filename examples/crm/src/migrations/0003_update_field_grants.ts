import { sql, type Kysely } from 'kysely';

/**
 * What walflow's update_field may touch of this application: the lifetime commission of a user, found by id.
 * walflow writes it as walflow_update_field (walflow's migration 0045), a role that holds only these grants, so
 * the table's own triggers never run with walflow's privileges. Needs the walflow schema (walflow migrate) first.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`GRANT USAGE ON SCHEMA crm TO walflow_update_field`.execute(db);
  await sql`GRANT SELECT (id, lifetime_commission_cents), UPDATE (lifetime_commission_cents) ON crm.users TO walflow_update_field`.execute(db);
}

