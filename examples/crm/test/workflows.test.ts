import { fileURLToPath } from 'node:url';
import type { RunningWalflow } from '@walflow/server';
import { waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, startTestWalflow } from '../../../packages/server/test/fixtures.js';
import { createClient } from '../src/clients.js';
import { chargeback, recordCommission } from '../src/commissions.js';
import { approvePolicy, cancelPolicy, createPolicy } from '../src/policies.js';
import { createRecruit, updatePhase } from '../src/recruits.js';
import { startSmtpSink, type SmtpSink } from '../src/smtp-sink.js';
import { TENANT } from '../src/tenant.js';
import { createUser, recordLogin } from '../src/users.js';
import { catalog } from '../src/catalog.js';
import { applyCrmWorkflows, CRM_UPDATE_FIELDS } from '../src/workflows.js';
import { useCrmDatabase } from './crm-test-database.js';

const { database, crm, walflow } = useCrmDatabase();
let sink: SmtpSink;
let running: RunningWalflow;

beforeAll(async () => {
  sink = await startSmtpSink({ refuses: (address) => address.endsWith('@refused.test') });
  running = await startTestWalflow(database.url, database.slotName, {
    smtp: { host: '127.0.0.1', port: sink.port, secure: false, from: 'The Agency <walflow@agency.test>' },
    updateFields: [...CRM_UPDATE_FIELDS],
    // Started with the example's catalog, so an engine event it does not describe would be parked.
    catalogModule: fileURLToPath(new URL('../src/catalog.ts', import.meta.url)),
  });
  await applyCrmWorkflows(walflow());
});
afterAll(async () => {
  await running?.stop();
  await sink?.close();
});

async function succeededRuns(workflowName: string): Promise<number> {
  const { rows } = await sql<{ count: number }>`
    SELECT count(*)::int AS count FROM walflow.workflow_runs r JOIN walflow.workflows w ON w.id = r.workflow_id
     WHERE w.tenant_id = ${TENANT} AND w.name = ${workflowName} AND r.status = 'succeeded'`.execute(walflow());
  return rows[0]?.count ?? 0;
}

describe('the example workflows, end to end with walflow running', () => {
  it('welcome-agent mails a recruit who graduates, and walflow records email.sent for that mail', async () => {
    const ada = await createRecruit(crm(), { name: 'Ada Lovelace', email: 'ada@agency.test' });
    for (const phase of ['licensing', 'training', 'graduated'] as const) await updatePhase(crm(), ada.id, phase);

    const mail = await waitFor('the welcome mail', () => sink.received.find((received) => received.to.includes('ada@agency.test')));
    expect(mail.subject).toBe('Welcome to the agency, Ada Lovelace');
    expect(mail.raw).toContain('To: ada@agency.test');
    expect(mail.raw).toContain('you graduated: from today you are one of our agents.');
    const sent = await waitFor('email.sent', () =>
      walflow().selectFrom('walflow.events').select(['payload', 'metadata']).where('event_type', '=', 'email.sent').where('aggregate_id', '=', ada.id).executeTakeFirst(),
    );
    expect(sent.payload).toMatchObject({ messageId: mail.messageId, to: ['ada@agency.test'], accepted: ['ada@agency.test'] });
    expect(sent.metadata).toMatchObject({ depth: 1 });
    expect(sink.received.filter((received) => received.to.includes('ada@agency.test'))).toHaveLength(1);
  });

  it('notify-policy-approved notifies the agent when a policy is approved, not when it is created', async () => {
    const agent = await createUser(crm(), { name: 'Alan Turing', email: 'alan@agency.test', role: 'agent' });
    const client = await createClient(crm(), { name: 'Katherine Johnson', email: 'katherine@agency.test' });
    const policy = await createPolicy(crm(), { clientId: client.id, agentId: agent.id, product: 'Term life', premiumCents: 125_000 });
    // Recorded, and decided: the creation fires nothing.
    await waitFor('the creation to be recorded', async () =>
      (await walflow().selectFrom('walflow.events').select('id').where('event_type', '=', 'policy.created').where('aggregate_id', '=', policy.id).execute()).length === 1,
    );
    const { rows: queued } = await sql<{ count: number }>`
      SELECT count(*)::int AS count FROM walflow.workflow_runs r JOIN walflow.workflows w ON w.id = r.workflow_id
       WHERE w.tenant_id = ${TENANT} AND w.name = 'notify-policy-approved'`.execute(walflow());
    // A run is queued in the transaction that records its event.
    expect(queued[0]?.count).toBe(0);
    await approvePolicy(crm(), policy.id);

    await waitFor('the run', async () => (await succeededRuns('notify-policy-approved')) === 1);
    const notifications = await walflow().selectFrom('walflow.notifications').select(['tenant_id', 'recipient', 'title', 'body', 'data']).execute();
    expect(notifications).toEqual([
      {
        tenant_id: TENANT,
        recipient: agent.id,
        title: 'Policy approved for Katherine Johnson',
        body: 'Term life, premium 125000 cents',
        data: { policyId: policy.id, clientId: client.id },
      },
    ]);
  });

  it("lifetime-commission and its chargeback keep the agent's lifetime commission", async () => {
    const agent = await createUser(crm(), { name: 'Grace Hopper', email: 'grace@agency.test', role: 'agent' });
    await recordCommission(crm(), { agentId: agent.id, amountCents: 18_750 });
    const lapsed = await recordCommission(crm(), { agentId: agent.id, amountCents: 9_000 });
    await chargeback(crm(), lapsed.id, 'policy lapsed');

    await waitFor('three runs', async () => (await succeededRuns('lifetime-commission')) === 2 && (await succeededRuns('lifetime-commission-chargeback')) === 1);
    const stored = await crm().selectFrom('crm.users').select('lifetime_commission_cents').where('id', '=', agent.id).executeTakeFirstOrThrow();
    expect(stored.lifetime_commission_cents).toBe('18750');
  });

  it('privileged-sign-in-alert: a condition on the role, a cooldown per user and address, a rate limit per user', async () => {
    const agent = await createUser(crm(), { name: 'Bob Kahn', email: 'bob@agency.test', role: 'agent' });
    const manager = await createUser(crm(), { name: 'Hedy Lamarr', email: 'hedy@agency.test', role: 'manager' });
    const addresses = ['203.0.113.10', '203.0.113.11', '203.0.113.10', '203.0.113.12', '203.0.113.13'];
    await recordLogin(crm(), agent.id, { ip: '198.51.100.7' });
    for (const ip of addresses) await recordLogin(crm(), manager.id, { ip });

    const decisions = await waitFor('six decisions', async () => {
      const { rows } = await sql<{ user_id: string; ip: string; outcome: string; committed_at: Date }>`
        SELECT e.payload->>'userId' AS user_id, e.payload->>'ip' AS ip, d.outcome, e.committed_at
          FROM walflow.decisions d JOIN walflow.events e ON e.id = d.event_id AND e.committed_at = d.event_committed_at
         WHERE e.event_type = 'user.login' ORDER BY e.committed_at`.execute(walflow());
      return rows.length === addresses.length + 1 && rows;
    });
    expect(decisions[0]).toMatchObject({ user_id: agent.id, outcome: 'condition_false' });
    const managerDecisions = decisions.slice(1);
    expect(managerDecisions.map((decision) => decision.outcome)).toEqual(expectedSignInOutcomes(managerDecisions));
    // Outside an hour boundary (practically always) that is: fired, fired, cooldown, rate_limited, rate_limited.
    expect(managerDecisions.slice(0, 3).map((decision) => decision.outcome)).toEqual(['fired', 'fired', 'cooldown']);

    const fired = managerDecisions.filter((decision) => decision.outcome === 'fired');
    await waitFor('the alerts', () => sink.received.filter((mail) => mail.to.includes('hedy@agency.test')).length === fired.length);
    expect(sink.received.filter((mail) => mail.to.includes('hedy@agency.test')).map((mail) => mail.subject).sort()).toEqual(
      fired.map((decision) => `New sign-in to your manager account from ${decision.ip}`).sort(),
    );
    expect(sink.received.filter((mail) => mail.to.includes('bob@agency.test'))).toEqual([]);
  });

  it("privileged-sign-in-alert: an admin's sign-in too, and one user's cooldown and limit are not another's", async () => {
    // After the test before: Hedy (a manager) signed in last from 203.0.113.13 and used her two alerts this hour.
    const admin = await createUser(crm(), { name: 'Radia Perlman', email: 'radia@agency.test', role: 'admin' });
    const second = await createUser(crm(), { name: 'Frances Allen', email: 'frances@agency.test', role: 'manager' });
    await recordLogin(crm(), admin.id, { ip: '203.0.113.14' });
    await recordLogin(crm(), second.id, { ip: '203.0.113.13' });
    const outcomes = await waitFor('their decisions', async () => {
      const { rows } = await sql<{ user_id: string; outcome: string }>`
        SELECT e.payload->>'userId' AS user_id, d.outcome
          FROM walflow.decisions d JOIN walflow.events e ON e.id = d.event_id AND e.committed_at = d.event_committed_at
         WHERE e.event_type = 'user.login' AND e.payload->>'userId' = ANY(${[admin.id, second.id]}::text[])`.execute(walflow());
      return rows.length === 2 && new Map(rows.map((row) => [row.user_id, row.outcome]));
    });
    expect(outcomes).toEqual(new Map([[admin.id, 'fired'], [second.id, 'fired']]));
  });

  it('every event of the tenant passed the catalog, including those walflow emitted itself', async () => {
    await waitFor('the outbox to drain', async () => (await walflow().selectFrom('walflow.outbox').select('id').execute()).length === 0);
    expect(await walflow().selectFrom('walflow.dead_letters').select(['event_type', 'reason']).execute()).toEqual([]);
    const types = await walflow().selectFrom('walflow.events').select('event_type').distinct().where('tenant_id', '=', TENANT).execute();
    expect(types.map((row) => row.event_type)).toContain('email.sent');
  });

  it("walflow's email.failed and workflow.auto_paused are the events the example's catalog says they are", async () => {
    // Not one of the example's workflows: one whose mail is refused, dead at its first failure, pausing at once.
    await applyTestWorkflow(walflow(), {
      tenant: TENANT,
      name: 'mail-on-cancel',
      trigger: { event: 'policy.cancelled' },
      actions: [{ type: 'send_email', to: 'nobody@refused.test', subject: 'Policy {{event.aggregateId}} cancelled', text: 'Cancelled.' }],
      retry: { maxAttempts: 1 },
      autoPause: { afterConsecutiveFailures: 1 },
    });
    const agent = await createUser(crm(), { name: 'Evelyn Boyd', email: 'evelyn@agency.test', role: 'agent' });
    const client = await createClient(crm(), { name: 'Mary Jackson', email: 'mary@agency.test' });
    const policy = await createPolicy(crm(), { clientId: client.id, agentId: agent.id, product: 'Term life', premiumCents: 90_000 });
    await cancelPolicy(crm(), policy.id, 'changed her mind');
    for (const type of ['email.failed', 'workflow.auto_paused']) {
      const event = await waitFor(type, () => walflow().selectFrom('walflow.events').select('payload').where('event_type', '=', type).where('tenant_id', '=', TENANT).executeTakeFirst());
      expect(catalog.check(type, event.payload)).toMatchObject({ ok: true });
    }
  });
});

/**
 * The workflow's guards applied by hand: an address seen in the last hour is in cooldown; otherwise at most two
 * alerts per user in each clock hour (rate-limit windows are aligned to their period).
 */
function expectedSignInOutcomes(logins: { ip: string; committed_at: Date }[]): string[] {
  const alertedAt = new Map<string, number>();
  const alertsPerHour = new Map<number, number>();
  return logins.map(({ ip, committed_at }) => {
    const at = committed_at.getTime();
    const last = alertedAt.get(ip);
    if (last !== undefined && at < last + 3_600_000) return 'cooldown';
    const hour = Math.floor(at / 3_600_000);
    if ((alertsPerHour.get(hour) ?? 0) >= 2) return 'rate_limited';
    alertsPerHour.set(hour, (alertsPerHour.get(hour) ?? 0) + 1);
    alertedAt.set(ip, at);
    return 'fired';
  });
}
