import { sql, type Kysely } from 'kysely';
import { COMMISSION_STATUSES, POLICY_STATUSES, RECRUIT_PHASES, USER_ROLES } from '../schema.js';

/** `column IN ('a', 'b')` for a CHECK constraint built from the domain's list of values. */
const oneOf = (column: string, values: readonly string[]) => sql`${sql.ref(column)} IN (${sql.join(values.map((value) => sql.lit(value)))})`;

// Migrations see the database as it was when they were written, not today's CrmDatabase.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createSchema('crm').ifNotExists().execute();
  const crm = db.schema.withSchema('crm');

  await crm
    .createTable('users')
    .addColumn('id', 'uuid', (column) => column.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('email', 'text', (column) => column.notNull().unique())
    .addColumn('role', 'text', (column) => column.notNull().check(oneOf('role', USER_ROLES)))
    .addColumn('lifetime_commission_cents', 'bigint', (column) => column.notNull().defaultTo(0))
    .addColumn('last_login_at', 'timestamptz')
    .addColumn('email_bounced_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();

  await crm
    .createTable('recruits')
    .addColumn('id', 'uuid', (column) => column.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('email', 'text', (column) => column.notNull())
    .addColumn('phase', 'text', (column) => column.notNull().defaultTo('applied').check(oneOf('phase', RECRUIT_PHASES)))
    .addColumn('sponsor_id', 'uuid', (column) => column.references('crm.users.id'))
    .addColumn('agent_id', 'uuid', (column) => column.references('crm.users.id'))
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();

  await crm
    .createTable('clients')
    .addColumn('id', 'uuid', (column) => column.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('email', 'text', (column) => column.notNull())
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();

  await crm
    .createTable('policies')
    .addColumn('id', 'uuid', (column) => column.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('client_id', 'uuid', (column) => column.notNull().references('crm.clients.id'))
    .addColumn('agent_id', 'uuid', (column) => column.notNull().references('crm.users.id'))
    .addColumn('product', 'text', (column) => column.notNull())
    .addColumn('premium_cents', 'integer', (column) => column.notNull().check(sql`premium_cents > 0`))
    .addColumn('status', 'text', (column) => column.notNull().defaultTo('pending').check(oneOf('status', POLICY_STATUSES)))
    .addColumn('cancel_reason', 'text')
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('approved_at', 'timestamptz')
    .addColumn('cancelled_at', 'timestamptz')
    .execute();

  await crm
    .createTable('commissions')
    .addColumn('id', 'uuid', (column) => column.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('agent_id', 'uuid', (column) => column.notNull().references('crm.users.id'))
    .addColumn('policy_id', 'uuid', (column) => column.references('crm.policies.id'))
    .addColumn('amount_cents', 'integer', (column) => column.notNull().check(sql`amount_cents > 0`))
    .addColumn('status', 'text', (column) => column.notNull().defaultTo('earned').check(oneOf('status', COMMISSION_STATUSES)))
    .addColumn('chargeback_reason', 'text')
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('paid_at', 'timestamptz')
    .execute();
}
