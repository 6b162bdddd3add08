import type { Kysely, Selectable, Transaction } from 'kysely';
import { outbox } from './crm-outbox.js';
import { inTransaction } from './in-transaction.js';
import type { CommissionsTable, CommissionStatus, CrmDatabase } from './schema.js';
import { TENANT } from './tenant.js';

export type Commission = Selectable<CommissionsTable>;

/** An agent earned a commission (on a policy, usually) → `commission.earned`. */
export async function recordCommission(
  db: Kysely<CrmDatabase>,
  commission: { agentId: string; policyId?: string | null; amountCents: number },
): Promise<Commission> {
  return inTransaction(db, async (trx) => {
    const row = await trx
      .insertInto('crm.commissions')
      .values({ agent_id: commission.agentId, policy_id: commission.policyId ?? null, amount_cents: commission.amountCents })
      .returningAll()
      .executeTakeFirstOrThrow();
    await outbox.emit(trx, {
      ...aggregate(row),
      type: 'commission.earned',
      payload: { commissionId: row.id, agentId: row.agent_id, policyId: row.policy_id, amountCents: row.amount_cents },
    });
    return row;
  });
}

/** The carrier takes an unpaid commission back (a lapsed policy) → `commission.chargeback`. */
export async function chargeback(db: Kysely<CrmDatabase>, commissionId: string, reason: string): Promise<Commission> {
  return inTransaction(db, async (trx) => {
    const row = await settle(trx, commissionId, { status: 'charged_back', chargeback_reason: reason });
    await outbox.emit(trx, {
      ...aggregate(row),
      type: 'commission.chargeback',
      payload: { commissionId: row.id, agentId: row.agent_id, policyId: row.policy_id, amountCents: row.amount_cents, reason },
    });
    return row;
  });
}

/** The commission was paid out → `commission.paid`, with the agent who received it. */
export async function markPaid(db: Kysely<CrmDatabase>, commissionId: string): Promise<Commission> {
  return inTransaction(db, async (trx) => {
    const row = await settle(trx, commissionId, { status: 'paid', paid_at: new Date() });
    const agent = await trx.selectFrom('crm.users').select(['id', 'name', 'email']).where('id', '=', row.agent_id).executeTakeFirstOrThrow();
    await outbox.emit(trx, { ...aggregate(row), type: 'commission.paid', payload: { commissionId: row.id, amountCents: row.amount_cents, agent } });
    return row;
  });
}

/** Only an earned commission can be charged back or paid, once. */
async function settle(
  trx: Transaction<CrmDatabase>,
  commissionId: string,
  changes: { status: CommissionStatus; chargeback_reason?: string; paid_at?: Date },
): Promise<Commission> {
  const row = await trx
    .updateTable('crm.commissions')
    .set(changes)
    .where('id', '=', commissionId)
    .where('status', '=', 'earned')
    .returningAll()
    .executeTakeFirst();
  if (row !== undefined) return row;
  const existing = await trx.selectFrom('crm.commissions').select('status').where('id', '=', commissionId).executeTakeFirst();
  throw new Error(existing === undefined ? `no commission ${commissionId}` : `commission ${commissionId} is ${existing.status}; it cannot become ${changes.status}`);
}

function aggregate(commission: Commission) {
  return { tenantId: TENANT, aggregateType: 'commission', aggregateId: commission.id } as const;
}
