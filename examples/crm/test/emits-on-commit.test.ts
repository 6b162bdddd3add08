import { isWalflowError } from '@walflow/core';
import { waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Client } from '../src/clients.js';
import { chargeback, markPaid, recordCommission } from '../src/commissions.js';
import { approvePolicy, cancelPolicy, createPolicy } from '../src/policies.js';
import { createRecruit, updatePhase } from '../src/recruits.js';
import type { CrmDatabase } from '../src/schema.js';
import { createUser, recordLogin, type User } from '../src/users.js';
import { emittedBy, useCrmDatabase, type OutboxRow } from './crm-test-database.js';

const { crm, walflow } = useCrmDatabase();

class RolledBack extends Error {}

/**
 * Runs `work` in a transaction that then rolls back — it must leave no outbox row — and again, committed, through
 * the service's own transaction; returns what the committed run emitted. The rolled-back run must leave the state as
 * it was, or the second run would see it.
 */
async function onlyOnCommit<T>(work: (db: Kysely<CrmDatabase>) => Promise<T>): Promise<{ result: T; rows: OutboxRow[] }> {
  let completed = false;
  const rolledBack = await emittedBy(walflow(), () =>
    crm()
      .transaction()
      .execute(async (trx) => {
        await work(trx);
        completed = true;
        throw new RolledBack();
      })
      .catch((error: unknown) => {
        if (!(error instanceof RolledBack)) throw error;
      }),
  );
  expect(completed).toBe(true);
  expect(rolledBack).toEqual([]);
  let result: T | undefined;
  const rows = await emittedBy(walflow(), async () => {
    result = await work(crm());
  });
  return { result: result as T, rows };
}

const types = (rows: OutboxRow[]): string[] => rows.map((row) => row.event_type).sort();

describe('recruits', () => {
  it('createRecruit → recruit.created', async () => {
    const { result: ada, rows } = await onlyOnCommit((db) => createRecruit(db, { name: 'Ada Lovelace', email: 'ada@crm.test' }));
    expect(rows).toEqual([
      {
        event_type: 'recruit.created',
        aggregate_id: ada.id,
        payload: { recruitId: ada.id, name: 'Ada Lovelace', email: 'ada@crm.test', phase: 'applied', sponsorId: null },
        metadata: {},
      },
    ]);
    expect(await crm().selectFrom('crm.recruits').select('id').where('email', '=', 'ada@crm.test').execute()).toEqual([{ id: ada.id }]);
  });

  it('updatePhase → recruit.phase_changed, plus recruit.graduated_to_agent with a new agent account', async () => {
    const grace = await createRecruit(crm(), { name: 'Grace Hopper', email: 'grace@crm.test' });
    const licensing = await onlyOnCommit((db) => updatePhase(db, grace.id, 'licensing'));
    expect(licensing.rows).toMatchObject([{ event_type: 'recruit.phase_changed', payload: { recruitId: grace.id, from: 'applied', to: 'licensing' } }]);

    const graduated = await onlyOnCommit((db) => updatePhase(db, grace.id, 'graduated'));
    expect(types(graduated.rows)).toEqual(['recruit.graduated_to_agent', 'recruit.phase_changed']);
    const agents = await crm().selectFrom('crm.users').select(['id', 'role']).where('email', '=', 'grace@crm.test').execute();
    expect(agents).toEqual([{ id: graduated.result.agent_id, role: 'agent' }]);
    expect(graduated.rows.find((row) => row.event_type === 'recruit.graduated_to_agent')?.payload).toEqual({
      recruitId: grace.id,
      agentId: agents[0]?.id,
      name: 'Grace Hopper',
      email: 'grace@crm.test',
    });
    expect(graduated.rows.find((row) => row.event_type === 'recruit.phase_changed')?.payload).toMatchObject({ from: 'licensing', to: 'graduated' });
  });

  it('updatePhase to dropped → recruit.phase_changed and recruit.dropped_out; a final phase does not change again', async () => {
    const bob = await createRecruit(crm(), { name: 'Bob Kahn', email: 'bob@crm.test' });
    const { rows } = await onlyOnCommit((db) => updatePhase(db, bob.id, 'dropped'));
    expect(types(rows)).toEqual(['recruit.dropped_out', 'recruit.phase_changed']);
    expect(rows.find((row) => row.event_type === 'recruit.dropped_out')?.payload).toEqual({ recruitId: bob.id, name: 'Bob Kahn', from: 'applied' });

    const refused = await emittedBy(walflow(), () => expect(updatePhase(crm(), bob.id, 'training')).rejects.toThrow('has dropped; the phase cannot change'));
    expect(refused).toEqual([]);
  });

  it('takes graduated as final too: a graduate does not go back to training', async () => {
    const lin = await createRecruit(crm(), { name: 'Lin Chao', email: 'lin@crm.test' });
    await updatePhase(crm(), lin.id, 'graduated');
    const refused = await emittedBy(walflow(), () => expect(updatePhase(crm(), lin.id, 'training')).rejects.toThrow('has graduated; the phase cannot change'));
    expect(refused).toEqual([]);
  });
});

describe('two phase changes of one recruit at once', () => {
  it('take turns: the second sees the first committed, and only one leaves training', async () => {
    const annie = await createRecruit(crm(), { name: 'Annie Easley', email: 'annie@crm.test' });
    await updatePhase(crm(), annie.id, 'training');
    const rows = await emittedBy(walflow(), async () => {
      let dropping: Promise<unknown> | undefined;
      await crm()
        .transaction()
        .execute(async (trx) => {
          await updatePhase(trx, annie.id, 'graduated');
          // Begun while the graduation is not committed: it must wait for it rather than read training too.
          dropping = updatePhase(crm(), annie.id, 'dropped').then(
            () => 'dropped',
            (error: unknown) => (error as Error).message,
          );
          // Until it waits on the recruit's row: at its FOR UPDATE (without it, at its UPDATE, having read training).
          await waitFor('the second change to wait for the first', async () => {
            const { rows } = await sql<{ waiting: number }>`
              SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(walflow());
            return rows[0]!.waiting > 0;
          }, { timeoutMs: 5000 });
        });
      expect(await dropping).toContain('has graduated; the phase cannot change');
    });
    expect(rows.filter((row) => row.event_type === 'recruit.phase_changed').map((row) => row.payload)).toEqual([
      { recruitId: annie.id, name: 'Annie Easley', from: 'training', to: 'graduated' },
    ]);
  });
});

describe('a service that opens its own transaction', () => {
  /** The transactions that wrote the rows (xmin), as of now. */
  const writers = async (table: string, column: string, value: string): Promise<string[]> =>
    (await sql<{ xmin: string }>`SELECT xmin::text AS xmin FROM ${sql.table(table)} WHERE ${sql.ref(column)} = ${value}`.execute(crm())).rows.map((row) => row.xmin);
  const outboxWriters = async (aggregateId: string): Promise<string[]> =>
    (await sql<{ xmin: string }>`SELECT DISTINCT xmin::text AS xmin FROM walflow.outbox WHERE aggregate_id = ${aggregateId}`.execute(walflow())).rows.map((row) => row.xmin);

  it('writes its domain rows and its events in that one transaction', async () => {
    const mae = await createRecruit(crm(), { name: 'Mae Jemison', email: 'mae@crm.test' });
    expect(await outboxWriters(mae.id)).toEqual(await writers('crm.recruits', 'id', mae.id));
    await sql`DELETE FROM walflow.outbox WHERE aggregate_id = ${mae.id}`.execute(walflow());
    // Graduating writes the recruit, a new agent and two events.
    await updatePhase(crm(), mae.id, 'graduated');
    const recruit = await writers('crm.recruits', 'id', mae.id);
    expect(await writers('crm.users', 'email', 'mae@crm.test')).toEqual(recruit);
    expect(await outboxWriters(mae.id)).toEqual(recruit);
  });
});

describe('policies and commissions', () => {
  let agent: User;
  let client: Client;
  beforeAll(async () => {
    agent = await createUser(crm(), { name: 'Alan Turing', email: 'alan@crm.test', role: 'agent' });
    client = await createClient(crm(), { name: 'Katherine Johnson', email: 'katherine@crm.test' });
  });

  it('createPolicy, approvePolicy and cancelPolicy emit the policy with its client', async () => {
    const created = await onlyOnCommit((db) => createPolicy(db, { clientId: client.id, agentId: agent.id, product: 'Term life', premiumCents: 125_000 }));
    const policy = { id: created.result.id, product: 'Term life', premiumCents: 125_000, agentId: agent.id };
    const clientSnapshot = { id: client.id, name: 'Katherine Johnson', email: 'katherine@crm.test' };
    expect(created.rows).toMatchObject([{ event_type: 'policy.created', aggregate_id: policy.id, payload: { policy: { ...policy, status: 'pending' }, client: clientSnapshot } }]);

    const approved = await onlyOnCommit((db) => approvePolicy(db, policy.id));
    expect(approved.rows).toEqual([
      { event_type: 'policy.approved', aggregate_id: policy.id, payload: { policy: { ...policy, status: 'approved' }, client: clientSnapshot }, metadata: {} },
    ]);

    const cancelled = await onlyOnCommit((db) => cancelPolicy(db, policy.id, 'client moved abroad'));
    expect(cancelled.rows).toMatchObject([
      { event_type: 'policy.cancelled', payload: { policy: { ...policy, status: 'cancelled' }, client: clientSnapshot, reason: 'client moved abroad' } },
    ]);
    const refused = await emittedBy(walflow(), () => expect(approvePolicy(crm(), policy.id)).rejects.toThrow('is cancelled; it cannot become approved'));
    expect(refused).toEqual([]);
  });

  it('changes the status of the policy named, and no other', async () => {
    const [a, b, c] = [await createPolicy(crm(), { clientId: client.id, agentId: agent.id, product: 'A', premiumCents: 1 }), await createPolicy(crm(), { clientId: client.id, agentId: agent.id, product: 'B', premiumCents: 1 }), await createPolicy(crm(), { clientId: client.id, agentId: agent.id, product: 'C', premiumCents: 1 })];
    await approvePolicy(crm(), a.id);
    await cancelPolicy(crm(), b.id, 'changed their mind');
    const statuses = await crm().selectFrom('crm.policies').select(['id', 'status']).where('id', 'in', [a.id, b.id, c.id]).execute();
    expect(new Map(statuses.map((row) => [row.id, row.status]))).toEqual(new Map([[a.id, 'approved'], [b.id, 'cancelled'], [c.id, 'pending']]));
  });

  it('recordCommission, chargeback and markPaid (with the agent)', async () => {
    const earned = await onlyOnCommit((db) => recordCommission(db, { agentId: agent.id, amountCents: 18_750 }));
    const commissionId = earned.result.id;
    expect(earned.rows).toMatchObject([
      { event_type: 'commission.earned', aggregate_id: commissionId, payload: { commissionId, agentId: agent.id, policyId: null, amountCents: 18_750 } },
    ]);

    const paid = await onlyOnCommit((db) => markPaid(db, commissionId));
    expect(paid.rows).toMatchObject([
      { event_type: 'commission.paid', payload: { commissionId, amountCents: 18_750, agent: { id: agent.id, name: 'Alan Turing', email: 'alan@crm.test' } } },
    ]);

    const lapsed = await recordCommission(crm(), { agentId: agent.id, amountCents: 9_000 });
    const chargedBack = await onlyOnCommit((db) => chargeback(db, lapsed.id, 'policy lapsed'));
    expect(chargedBack.rows).toMatchObject([
      { event_type: 'commission.chargeback', payload: { commissionId: lapsed.id, agentId: agent.id, amountCents: 9_000, reason: 'policy lapsed' } },
    ]);
    const refused = await emittedBy(walflow(), () => expect(markPaid(crm(), lapsed.id)).rejects.toThrow('is charged_back; it cannot become paid'));
    expect(refused).toEqual([]);
  });
});

describe('users', () => {
  it('recordLogin → user.login with the role at that moment', async () => {
    const user = await createUser(crm(), { name: 'Hedy Lamarr', email: 'hedy@crm.test', role: 'admin' });
    const { rows, result } = await onlyOnCommit((db) => recordLogin(db, user.id, { ip: '203.0.113.9' }));
    expect(rows).toEqual([
      {
        event_type: 'user.login',
        aggregate_id: user.id,
        payload: { userId: user.id, email: 'hedy@crm.test', role: 'admin', ip: '203.0.113.9' },
        metadata: { actorId: user.id },
      },
    ]);
    expect(result.last_login_at).toBeInstanceOf(Date);
  });

  it('a payload the catalog refuses fails the whole write with payload_invalid', async () => {
    const user = await createUser(crm(), { name: 'Radia Perlman', email: 'radia@crm.test', role: 'agent' });
    const rows = await emittedBy(walflow(), async () => {
      const error: unknown = await recordLogin(crm(), user.id, { ip: 'not an address' }).catch((caught: unknown) => caught);
      expect(isWalflowError(error) && error.code).toBe('payload_invalid');
      expect((error as Error).message).toContain('ip');
    });
    expect(rows).toEqual([]);
    const stored = await crm().selectFrom('crm.users').select('last_login_at').where('id', '=', user.id).executeTakeFirstOrThrow();
    expect(stored.last_login_at).toBeNull();
  });
});

describe('the crm.users trigger', () => {
  it('emits user.role_changed when the role changes, from plain SQL, and only on commit', async () => {
    const user = await createUser(crm(), { name: 'Barbara Liskov', email: 'barbara@crm.test', role: 'agent' });
    const { rows } = await onlyOnCommit((db) => sql`UPDATE crm.users SET role = 'manager' WHERE id = ${user.id}`.execute(db));
    expect(rows).toEqual([
      {
        event_type: 'user.role_changed',
        aggregate_id: user.id,
        payload: { userId: user.id, name: 'Barbara Liskov', email: 'barbara@crm.test', from: 'agent', to: 'manager' },
        metadata: { source: 'trigger on crm.users' },
      },
    ]);
  });

  it('emits nothing when an update leaves the role as it was', async () => {
    const user = await createUser(crm(), { name: 'Frances Allen', email: 'frances@crm.test', role: 'manager' });
    const rows = await emittedBy(walflow(), async () => {
      await sql`UPDATE crm.users SET role = 'manager' WHERE id = ${user.id}`.execute(crm());
      await sql`UPDATE crm.users SET role = role, name = 'Frances E. Allen' WHERE id = ${user.id}`.execute(crm());
      await recordLogin(crm(), user.id, { ip: '2001:db8::1' });
    });
    expect(types(rows)).toEqual(['user.login']);
  });
});
