import type { WalflowDatabase } from '@walflow/core';
import { waitFor } from '@walflow/testing/runtime';
import { sql, type Kysely } from 'kysely';
import { createClient } from '../clients.js';
import { chargeback, markPaid, recordCommission } from '../commissions.js';
import { approvePolicy, cancelPolicy, createPolicy } from '../policies.js';
import { createRecruit, updatePhase, type Recruit } from '../recruits.js';
import type { CrmDatabase } from '../schema.js';
import { createUser, recordLogin } from '../users.js';

/** What the report checks afterwards. */
export interface AgencyDayFacts {
  /** The recruit whose graduation rolled back: walflow must show nothing of it, and the recruit is still licensing. */
  rolledBack: Recruit;
  /** The agent who earned a commission and had another charged back, and what his lifetime commission must be. */
  commissioned: { id: string; name: string; netCents: number };
}

/**
 * One scripted day in the agency, through the example's services: each step is a committed transaction with its
 * events, except one that rolls back. `tag` keeps addresses unique when the demo runs again on the same database.
 */
export async function performAgencyDay(
  db: Kysely<CrmDatabase>,
  walflow: Kysely<WalflowDatabase>,
  options: { tag: string; bounceUrl: string; say: (line: string) => void },
): Promise<AgencyDayFacts> {
  const { say } = options;
  const address = (name: string): string => `${name}+${options.tag}@agency.example`;

  say('Staff and clients join (no events)');
  const grace = await createUser(db, { name: 'Grace Hopper', email: address('grace'), role: 'manager' });
  const alan = await createUser(db, { name: 'Alan Turing', email: address('alan'), role: 'agent' });
  const katherine = await createClient(db, { name: 'Katherine Johnson', email: address('katherine') });
  const dorothy = await createClient(db, { name: 'Dorothy Vaughan', email: address('dorothy') });

  say('Recruits: Ada graduates, Bob drops out, Carol starts licensing');
  const ada = await createRecruit(db, { name: 'Ada Lovelace', email: address('ada'), sponsorId: alan.id });
  const bob = await createRecruit(db, { name: 'Bob Kahn', email: address('bob'), sponsorId: alan.id });
  const carol = await createRecruit(db, { name: 'Carol Shaw', email: address('carol'), sponsorId: grace.id });
  for (const phase of ['licensing', 'training', 'graduated'] as const) await updatePhase(db, ada.id, phase);
  await updatePhase(db, bob.id, 'dropped');
  await updatePhase(db, carol.id, 'licensing');

  say("Carol's graduation fails after the write: the transaction rolls back");
  const failure = await db
    .transaction()
    .execute(async (trx) => {
      await updatePhase(trx, carol.id, 'graduated');
      throw new Error('licence check failed after the phase was written');
    })
    .catch((error: unknown) => error as Error);
  say(`  rolled back: ${failure.message}`);

  say('Policies: one approved, one cancelled; commissions earned, charged back and paid');
  const termLife = await createPolicy(db, { clientId: katherine.id, agentId: alan.id, product: 'Term life, 20 years', premiumCents: 125_000 });
  await approvePolicy(db, termLife.id);
  const homeowner = await createPolicy(db, { clientId: dorothy.id, agentId: alan.id, product: 'Homeowner', premiumCents: 84_000 });
  await cancelPolicy(db, homeowner.id, 'the client changed her mind');
  const earned = await recordCommission(db, { agentId: alan.id, policyId: termLife.id, amountCents: 18_750 });
  const lapsed = await recordCommission(db, { agentId: alan.id, policyId: homeowner.id, amountCents: 9_000 });
  await chargeback(db, lapsed.id, 'policy cancelled');
  await markPaid(db, earned.id);

  say('Sign-ins: Alan (an agent), then Grace (a manager) from five addresses, one of them twice');
  await recordLogin(db, alan.id, { ip: '198.51.100.7' });
  for (const ip of ['203.0.113.10', '203.0.113.11', '203.0.113.10', '203.0.113.12', '203.0.113.13', '203.0.113.14']) {
    await recordLogin(db, grace.id, { ip });
  }

  say('An admin script promotes Alan with plain SQL; the crm.users trigger emits user.role_changed');
  await sql`UPDATE crm.users SET role = 'manager' WHERE id = ${alan.id}`.execute(db);
  await sql`UPDATE crm.users SET role = role, name = name WHERE id = ${alan.id}`.execute(db);
  await recordLogin(db, alan.id, { ip: '198.51.100.7' });

  say("The mail provider reports that Ada's welcome mail bounced");
  const sent = await waitFor(
    "Ada's welcome mail",
    () =>
      walflow
        .selectFrom('walflow.events')
        .select(sql<string>`payload->>'messageId'`.as('messageId'))
        .where('event_type', '=', 'email.sent')
        .where(sql<boolean>`payload->'to' ? ${ada.email}`)
        .executeTakeFirst(),
    { timeoutMs: 60_000 },
  );
  const invalid = await postJson(options.bounceUrl, { type: 'bounce', email: 'not an address', bounceType: 'maybe' });
  say(`  a malformed notification is refused: ${invalid.status} ${invalid.text}`);
  const bounce = { type: 'bounce', email: ada.email, bounceType: 'hard', messageId: sent.messageId, description: '550 5.1.1 mailbox unknown', bouncedAt: new Date().toISOString() };
  const accepted = await postJson(options.bounceUrl, bounce);
  if (accepted.status !== 202) throw new Error(`the bounce webhook answered ${accepted.status}: ${accepted.text}`);
  say(`  the bounce is accepted: ${accepted.status} ${accepted.text}`);

  // Both commissions were earned and the lapsed one charged back: what stays is the one still earned.
  return { rolledBack: carol, commissioned: { id: alan.id, name: alan.name, netCents: earned.amount_cents } };
}

async function postJson(url: string, body: unknown): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, text: await response.text() };
}
