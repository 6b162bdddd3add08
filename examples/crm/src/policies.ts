import type { Kysely, Selectable, Transaction } from 'kysely';
import type { PersonSnapshot, PolicySnapshot } from './catalog.js';
import { outbox } from './crm-outbox.js';
import { inTransaction } from './in-transaction.js';
import type { CrmDatabase, PoliciesTable, PolicyStatus } from './schema.js';
import { TENANT } from './tenant.js';

export type Policy = Selectable<PoliciesTable>;

/** A new policy, pending approval → `policy.created`. */
export async function createPolicy(
  db: Kysely<CrmDatabase>,
  policy: { clientId: string; agentId: string; product: string; premiumCents: number },
): Promise<Policy> {
  return inTransaction(db, async (trx) => {
    const row = await trx
      .insertInto('crm.policies')
      .values({ client_id: policy.clientId, agent_id: policy.agentId, product: policy.product, premium_cents: policy.premiumCents })
      .returningAll()
      .executeTakeFirstOrThrow();
    await outbox.emit(trx, { ...aggregate(row), type: 'policy.created', payload: await snapshots(trx, row) });
    return row;
  });
}

/** pending → approved, `policy.approved`. */
export async function approvePolicy(db: Kysely<CrmDatabase>, policyId: string): Promise<Policy> {
  return inTransaction(db, async (trx) => {
    const row = await transition(trx, policyId, ['pending'], { status: 'approved', approved_at: new Date() });
    await outbox.emit(trx, { ...aggregate(row), type: 'policy.approved', payload: await snapshots(trx, row) });
    return row;
  });
}

/** pending or approved → cancelled, `policy.cancelled` with the reason. */
export async function cancelPolicy(db: Kysely<CrmDatabase>, policyId: string, reason: string): Promise<Policy> {
  return inTransaction(db, async (trx) => {
    const row = await transition(trx, policyId, ['pending', 'approved'], { status: 'cancelled', cancelled_at: new Date(), cancel_reason: reason });
    await outbox.emit(trx, { ...aggregate(row), type: 'policy.cancelled', payload: { ...(await snapshots(trx, row)), reason } });
    return row;
  });
}

async function transition(
  trx: Transaction<CrmDatabase>,
  policyId: string,
  allowedFrom: readonly PolicyStatus[],
  changes: { status: PolicyStatus; approved_at?: Date; cancelled_at?: Date; cancel_reason?: string },
): Promise<Policy> {
  const row = await trx
    .updateTable('crm.policies')
    .set(changes)
    .where('id', '=', policyId)
    .where('status', 'in', allowedFrom)
    .returningAll()
    .executeTakeFirst();
  if (row !== undefined) return row;
  const existing = await trx.selectFrom('crm.policies').select('status').where('id', '=', policyId).executeTakeFirst();
  throw new Error(existing === undefined ? `no policy ${policyId}` : `policy ${policyId} is ${existing.status}; it cannot become ${changes.status}`);
}

function aggregate(policy: Policy) {
  return { tenantId: TENANT, aggregateType: 'policy', aggregateId: policy.id } as const;
}

/** The policy and its client, as events carry them. */
async function snapshots(trx: Transaction<CrmDatabase>, policy: Policy): Promise<{ policy: PolicySnapshot; client: PersonSnapshot }> {
  const client = await trx.selectFrom('crm.clients').select(['id', 'name', 'email']).where('id', '=', policy.client_id).executeTakeFirstOrThrow();
  return {
    policy: { id: policy.id, product: policy.product, premiumCents: policy.premium_cents, status: policy.status, agentId: policy.agent_id },
    client,
  };
}
