import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { WalflowDatabase } from '@walflow/core';
import { EVALUATION_DEADLINE_MS, getWorkflowById } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { replayRange, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { SMTPServer } from 'smtp-server';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, silentLogger, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
const policy = { updateFields: ['crm_test.agents.lifetime_commission'] };
const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
let walflow: RunningWalflow;
let db: Kysely<WalflowDatabase>;

const mails: { to: string[]; raw: string }[] = [];
let smtp: SMTPServer;
let smtpPort: number;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const requests: Received[] = [];
/** Paths that answer 500 this many more times before they succeed. */
const failuresLeft = new Map<string, number>();
let http: Server;
let httpPort: number;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onRcptTo(address, _session, callback) {
      if (address.address.endsWith('@bounce.test')) return callback(new Error('550 mailbox unavailable'));
      callback();
    },
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), raw });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
  smtpPort = (smtp.server.address() as AddressInfo).port;

  http = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const path = request.url ?? '/';
      requests.push({ path, headers: request.headers, body });
      const left = failuresLeft.get(path) ?? 0;
      if (left > 0) failuresLeft.set(path, left - 1);
      response.writeHead(left > 0 ? 500 : 204).end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  httpPort = (http.address() as AddressInfo).port;

  walflow = await startTestWalflow(database.url, database.slotName, {
    smtp: { host: '127.0.0.1', port: smtpPort, secure: false, from: 'walflow@agency.test' },
    webhookSigningSecret: webhookSecret,
    webhookAllowHosts: ['127.0.0.1'],
    updateFields: ['crm_test.agents.lifetime_commission', 'crm_test.accounts.balance@tenant_id'],
    secrets: new Map([['CRM_TOKEN', 'token-123']]),
    workerConcurrency: 3,
  });
  db = walflow.db;
  await sql`CREATE SCHEMA crm_test`.execute(db);
  await sql`CREATE TABLE crm_test.agents (id text PRIMARY KEY, name text NOT NULL, lifetime_commission numeric NOT NULL DEFAULT 0)`.execute(db);
  await sql`INSERT INTO crm_test.agents (id, name) VALUES ('a1', 'Ada'), ('a2', 'Bea')`.execute(db);
});
afterAll(async () => {
  await walflow?.stop();
  await new Promise<void>((resolve) => smtp?.close(() => resolve()));
  await new Promise<void>((resolve) => http?.close(() => resolve()));
});

async function decisionsFor(eventId: string) {
  return db
    .selectFrom('walflow.decisions as d')
    .innerJoin('walflow.workflows as w', 'w.id', 'd.workflow_id')
    .select(['w.name', 'd.outcome', 'd.reason', 'd.detail'])
    .where('d.event_id', '=', eventId)
    .orderBy('w.name')
    .execute();
}

async function waitForDecisions(eventIds: string[], count: number) {
  await waitFor(`${count} decisions`, async () => {
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.decisions WHERE event_id = ANY(${eventIds}::uuid[])`.execute(db);
    return Number(rows[0]?.n) >= count;
  });
}

describe('conditions and triggers', () => {
  it('fires every matching workflow, exact and wildcard, and says why one did not', async () => {
    const tenant = 'conditions';
    await applyTestWorkflow(db, { tenant, name: 'all-policies', trigger: { event: 'policy.*' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'policy event' }] });
    await applyTestWorkflow(db, {
      tenant,
      name: 'big-premium',
      trigger: { event: 'policy.approved' },
      condition: 'event.payload.premium >= 1000.0',
      actions: [{ type: 'create_notification', recipient: '{{event.metadata.actorId}}', title: 'Big policy {{event.aggregateId}}' }],
    });
    await applyTestWorkflow(db, { tenant, name: 'broken-condition', trigger: { event: 'policy.approved' }, condition: 'event.payload.missing == 1.0', actions: [{ type: 'emit_event', event: 'x.y' }] });
    const small = await emit(db, { type: 'policy.approved', tenantId: tenant, aggregateId: 'p-small', actorId: 'u1', payload: { premium: 10 } });
    const big = await emit(db, { type: 'policy.approved', tenantId: tenant, aggregateId: 'p-big', actorId: 'u1', payload: { premium: 5000 } });
    await waitForDecisions([small, big], 6);
    expect((await decisionsFor(small)).map((d) => [d.name, d.outcome])).toEqual([
      ['all-policies', 'fired'],
      ['big-premium', 'condition_false'],
      ['broken-condition', 'condition_error'],
    ]);
    expect((await decisionsFor(big)).map((d) => [d.name, d.outcome])).toEqual([
      ['all-policies', 'fired'],
      ['big-premium', 'fired'],
      ['broken-condition', 'condition_error'],
    ]);
    expect((await decisionsFor(small))[2]?.reason).toMatch(/missing/);
    const notification = await waitFor('the notification', () =>
      db.selectFrom('walflow.notifications').selectAll().where('tenant_id', '=', tenant).where('title', '=', 'Big policy p-big').executeTakeFirst(),
    );
    expect(notification).toMatchObject({ recipient: 'u1' });
  });

  it('stops a condition that would cost the square of a large event at its deadline, records why, and goes on', async () => {
    const tenant = 'costly-conditions';
    await applyTestWorkflow(db, {
      tenant,
      name: 'none-blocked',
      trigger: { event: 'order.placed' },
      condition: 'event.payload.ids.all(id, !(id in event.payload.blocked))',
      actions: [{ type: 'create_notification', recipient: 'ops', title: 'order {{event.aggregateId}}' }],
    });
    await applyTestWorkflow(db, { tenant, name: 'every-order', trigger: { event: 'order.placed' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'any order' }] });
    // 40,000 ids against 40,000 blocked ones: 1.6 billion comparisons, seconds to minutes without a deadline.
    const ids = Array.from({ length: 40_000 }, (_, n) => n);
    const blocked = ids.map((n) => -n - 1);
    const [large, small] = await db.transaction().execute(async (trx) => [
      await emit(trx, { type: 'order.placed', tenantId: tenant, aggregateId: 'large', payload: { ids, blocked } }),
      await emit(trx, { type: 'order.placed', tenantId: tenant, aggregateId: 'small', payload: { ids: [1, 2], blocked: [3] } }),
    ]);
    await waitForDecisions([large, small], 4);
    const decisions = await decisionsFor(large);
    expect(decisions.map((d) => [d.name, d.outcome])).toEqual([
      ['every-order', 'fired'],
      ['none-blocked', 'condition_error'],
    ]);
    expect(decisions[1]?.reason).toMatch(new RegExp(`evaluation took longer than ${EVALUATION_DEADLINE_MS} ms`));
    expect((await decisionsFor(small)).map((d) => [d.name, d.outcome])).toEqual([
      ['every-order', 'fired'],
      ['none-blocked', 'fired'],
    ]);
  });

  it('rejects a condition that does not compile, with the position', async () => {
    await expect(
      applyTestWorkflow(db, { tenant: 'conditions', name: 'bad', trigger: { event: 'policy.approved' }, condition: 'event.payload.premium >', actions: [{ type: 'emit_event', event: 'x.y' }] }),
    ).rejects.toMatchObject({ code: 'workflow_invalid', message: expect.stringMatching(/line 1, column/) });
    await expect(
      applyTestWorkflow(db, { tenant: 'conditions', name: 'bad', trigger: { event: 'policy.approved' }, condition: "event.payload.name.matches('(a+)+$')", actions: [{ type: 'emit_event', event: 'x.y' }] }),
    ).rejects.toThrow(/regular expression/i);
  });
});

describe('guards', () => {
  it('holds a cooldown per key in commit time and says when it ends', async () => {
    const tenant = 'cooldown';
    await applyTestWorkflow(db, { tenant, name: 'once-per-recruit', trigger: { event: 'recruit.phase_changed' }, cooldown: { seconds: 3600, key: 'event.aggregateId' }, actions: [{ type: 'emit_event', event: 'x.done' }] });
    const ids = [];
    for (const recruit of ['r1', 'r1', 'r2', 'r1']) ids.push(await emit(db, { type: 'recruit.phase_changed', tenantId: tenant, aggregateId: recruit, payload: {} }));
    await waitForDecisions(ids, 4);
    const outcomes = await Promise.all(ids.map(async (id) => (await decisionsFor(id))[0]));
    expect(outcomes.map((d) => d?.outcome)).toEqual(['fired', 'cooldown', 'fired', 'cooldown']);
    expect(outcomes[1]?.detail).toMatchObject({ key: 'r1', seconds: 3600, until: expect.any(String) });
  });

  it('rate-limits per user, and lets a critical event bypass the guards', async () => {
    const tenant = 'rate';
    await applyTestWorkflow(db, {
      tenant,
      name: 'two-per-user',
      trigger: { event: 'user.login' },
      bypass: "has(event.payload.priority) && event.payload.priority == 'critical'",
      rateLimits: [{ limit: 2, periodSeconds: 3600, key: 'event.metadata.actorId' }],
      actions: [{ type: 'emit_event', event: 'x.done' }],
    });
    const ids = [];
    for (const [actor, priority] of [['u1'], ['u1'], ['u2'], ['u1'], ['u1', 'critical']] as const) {
      ids.push(await emit(db, { type: 'user.login', tenantId: tenant, actorId: actor, payload: priority ? { priority } : {} }));
    }
    await waitForDecisions(ids, 5);
    const outcomes = await Promise.all(ids.map(async (id) => (await decisionsFor(id))[0]));
    expect(outcomes.map((d) => d?.outcome)).toEqual(['fired', 'fired', 'fired', 'rate_limited', 'fired']);
    expect(outcomes[3]?.detail).toMatchObject({ limit: 2, periodSeconds: 3600, key: 'u1' });
    expect(outcomes[4]?.detail).toMatchObject({ bypassed: true });
  });

  it('stops an A → B → A chain on the same aggregate', async () => {
    const tenant = 'chain';
    await applyTestWorkflow(db, { tenant, name: 'a', trigger: { event: 'ping.a' }, actions: [{ type: 'emit_event', event: 'ping.b' }] });
    await applyTestWorkflow(db, { tenant, name: 'b', trigger: { event: 'ping.b' }, actions: [{ type: 'emit_event', event: 'ping.a' }] });
    const first = await emit(db, { type: 'ping.a', tenantId: tenant, aggregateType: 'recruit', aggregateId: 'r1', payload: {} });
    const blocked = await waitFor('the loop to be blocked', () =>
      db.selectFrom('walflow.decisions').selectAll().where('tenant_id', '=', tenant).where('outcome', '=', 'loop_blocked').executeTakeFirst(),
    );
    expect(blocked.reason).toBe('workflow already ran in this causal chain for the same aggregate');
    expect(blocked.detail).toMatchObject({ correlationId: first, aggregateId: 'r1' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { rows } = await sql<{ runs: string; events: string }>`
      SELECT (SELECT count(*) FROM walflow.workflow_runs WHERE tenant_id = ${tenant}) AS runs,
             (SELECT count(*) FROM walflow.events WHERE tenant_id = ${tenant}) AS events`.execute(db);
    expect(rows[0]).toEqual({ runs: '2', events: '3' });
  });

  it("stops an A → B → A chain that a replay's run started: the live runs count the replay's", async () => {
    const tenant = 'replayed-chain';
    const from = new Date(Date.now() - 60_000);
    // Recorded before its workflows exist: only a replay fires A for it.
    const first = await emit(db, { type: 'ping.a', tenantId: tenant, aggregateType: 'recruit', aggregateId: 'r1', payload: {} });
    await waitFor('the first event to be recorded', () => db.selectFrom('walflow.events').select('id').where('id', '=', first).executeTakeFirst());
    await applyTestWorkflow(db, { tenant, name: 'a', trigger: { event: 'ping.a' }, actions: [{ type: 'emit_event', event: 'ping.b' }] });
    await applyTestWorkflow(db, { tenant, name: 'b', trigger: { event: 'ping.b' }, actions: [{ type: 'emit_event', event: 'ping.a' }] });
    const replay = await replayRange({ db, logger: silentLogger, slotName: database.slotName, from, to: new Date(), tenantId: tenant, retentionDays: 30 });
    expect(replay.runsQueued).toBe(1);

    // A (replayed) emits ping.b; B (live) emits ping.a; A is blocked, although its only run in the chain is the replay's.
    const blocked = await waitFor('the loop to be blocked', () =>
      db.selectFrom('walflow.decisions').selectAll().where('tenant_id', '=', tenant).where('outcome', '=', 'loop_blocked').executeTakeFirst(),
    );
    const a = await db.selectFrom('walflow.workflows').select('id').where('tenant_id', '=', tenant).where('name', '=', 'a').executeTakeFirstOrThrow();
    expect(blocked).toMatchObject({ workflow_id: a.id, replay_id: null });
    expect(blocked.detail).toMatchObject({ correlationId: first, aggregateId: 'r1' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const runs = await db.selectFrom('walflow.workflow_runs as r').innerJoin('walflow.workflows as w', 'w.id', 'r.workflow_id')
      .select(['w.name', 'r.replay_id']).where('r.tenant_id', '=', tenant).orderBy('r.created_at').execute();
    expect(runs).toEqual([{ name: 'a', replay_id: replay.replayId }, { name: 'b', replay_id: null }]);
    const caused = await db.selectFrom('walflow.events').select('metadata').where('tenant_id', '=', tenant).where('id', '<>', first).orderBy('committed_at').execute();
    expect(caused.map((event) => event.metadata)).toEqual([
      expect.objectContaining({ correlationId: first, depth: 1, replayId: replay.replayId }),
      expect.objectContaining({ correlationId: first, depth: 2, replayId: replay.replayId }),
    ]);
  });
  it('sets a downstream workflow going again when a replay of the workflow upstream emits its event anew', async () => {
    const tenant = 'replayed-upstream';
    await applyTestWorkflow(db, { tenant, name: 'a', trigger: { event: 'ping.a' }, actions: [{ type: 'emit_event', event: 'ping.b' }] });
    await applyTestWorkflow(db, { tenant, name: 'b', trigger: { event: 'ping.b' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'b ran' }] });
    const from = new Date(Date.now() - 1_000);
    const first = await emit(db, { type: 'ping.a', tenantId: tenant, aggregateType: 'recruit', aggregateId: 'r1', payload: {} });
    const runsOfB = () =>
      db.selectFrom('walflow.workflow_runs as r').innerJoin('walflow.workflows as w', 'w.id', 'r.workflow_id').select(['r.id', 'r.status']).where('r.tenant_id', '=', tenant).where('w.name', '=', 'b').execute();
    await waitFor('B to run live', async () => (await runsOfB()).some((run) => run.status === 'succeeded'));
    const replay = await replayRange({ db, logger: silentLogger, slotName: database.slotName, from, to: new Date(), tenantId: tenant, workflow: 'a', retentionDays: 30 });
    expect(replay.runsQueued).toBe(1);
    // A's replayed run emits ping.b again, down the chain the replay started: B, which ran in the live chain, runs.
    await waitFor('B to run for the replay', async () => (await runsOfB()).filter((run) => run.status === 'succeeded').length === 2);
    const blocked = await db.selectFrom('walflow.decisions').select('outcome').where('tenant_id', '=', tenant).where('outcome', '=', 'loop_blocked').execute();
    expect(blocked).toEqual([]);
    const caused = await db.selectFrom('walflow.events').select('metadata').where('tenant_id', '=', tenant).where('id', '<>', first).orderBy('committed_at').execute();
    expect(caused.map((event) => event.metadata)).toEqual([
      expect.objectContaining({ correlationId: first, depth: 1 }),
      expect.objectContaining({ correlationId: first, depth: 1, replayId: replay.replayId }),
    ]);
  });
});

describe('actions', () => {
  it('increments a field exactly once per commission, and refuses a field that is not allowed', async () => {
    const tenant = 'commission';
    await applyTestWorkflow(
      db,
      {
        tenant,
        name: 'lifetime-commission',
        trigger: { event: 'commission.earned' },
        actions: [{ type: 'update_field', table: 'crm_test.agents', key: { column: 'id', value: '{{event.payload.agentId}}' }, column: 'lifetime_commission', increment: '{{event.payload.amount}}' }],
      },
      policy,
    );
    for (const amount of [100.5, 20, 3]) await emit(db, { type: 'commission.earned', tenantId: tenant, payload: { agentId: 'a1', amount } });
    await waitFor('the commissions to add up', async () => {
      const row = await sql<{ total: string }>`SELECT lifetime_commission::text AS total FROM crm_test.agents WHERE id = 'a1'`.execute(db);
      return row.rows[0]?.total === '123.5';
    });
    await expect(
      applyTestWorkflow(db, { tenant, name: 'sneaky', trigger: { event: 'commission.earned' }, actions: [{ type: 'update_field', table: 'crm_test.agents', key: { column: 'id', value: 'a1' }, column: 'name', value: 'x' }] }, policy),
    ).rejects.toThrow(/may not write crm_test\.agents\.name/);
  });

  it("keeps update_field within the event's tenant where the operator says so: another tenant's row is not found", async () => {
    await sql`CREATE TABLE crm_test.accounts (tenant_id text NOT NULL, id text PRIMARY KEY, balance numeric NOT NULL DEFAULT 0)`.execute(db);
    await sql`INSERT INTO crm_test.accounts (tenant_id, id) VALUES ('acct-a', 'mine'), ('acct-b', 'theirs')`.execute(db);
    const scoped = { updateFields: ['crm_test.accounts.balance@tenant_id'] };
    const credit = (extra: { tenantColumn?: string }) => ({
      tenant: 'acct-a',
      name: 'credit',
      trigger: { event: 'payment.received' },
      retry: { maxAttempts: 1 },
      actions: [{ type: 'update_field' as const, table: 'crm_test.accounts', key: { column: 'id', value: '{{event.payload.account}}' }, column: 'balance', increment: 1, ...extra }],
    });
    await expect(applyTestWorkflow(db, credit({}), scoped)).rejects.toThrow(/may write crm_test\.accounts\.balance only within the event's tenant: add "tenantColumn": "tenant_id"/);
    await applyTestWorkflow(db, credit({ tenantColumn: 'tenant_id' }), scoped);
    await emit(db, { type: 'payment.received', tenantId: 'acct-a', payload: { account: 'theirs' } });
    await emit(db, { type: 'payment.received', tenantId: 'acct-a', payload: { account: 'mine' } });
    const runs = await waitFor('both runs to finish', async () => {
      const rows = await db.selectFrom('walflow.workflow_runs').select(['status', 'last_error']).where('tenant_id', '=', 'acct-a').orderBy('commit_lsn').execute();
      return rows.length === 2 && rows.every((row) => row.status !== 'queued' && row.status !== 'running') ? rows : undefined;
    });
    expect(runs).toEqual([
      { status: 'dead', last_error: expect.stringContaining('with id = "theirs" and tenant_id = "acct-a", found 0') },
      { status: 'succeeded', last_error: null },
    ]);
    const balances = await sql<{ id: string; balance: string }>`SELECT id, balance::text AS balance FROM crm_test.accounts ORDER BY id`.execute(db);
    expect(balances.rows).toEqual([{ id: 'mine', balance: '1' }, { id: 'theirs', balance: '0' }]);
  });

  it('sends an email from a template and emits email.sent; a bounce ends dead with email.failed', async () => {
    const tenant = 'mail';
    await applyTestWorkflow(db, {
      tenant,
      name: 'welcome-email',
      trigger: { event: 'recruit.graduated_to_agent' },
      retry: { maxAttempts: 2 },
      actions: [{ type: 'send_email', to: '{{event.payload.email}}', subject: 'Welcome, {{event.payload.name}}', text: 'Recruit {{event.aggregateId}} is now an agent.' }],
    });
    const ok = await emit(db, { type: 'recruit.graduated_to_agent', tenantId: tenant, aggregateId: 'r-ada', payload: { email: 'ada@agency.test', name: 'Ada' } });
    const sent = await waitFor('email.sent', () => db.selectFrom('walflow.events').selectAll().where('tenant_id', '=', tenant).where('event_type', '=', 'email.sent').executeTakeFirst());
    expect(sent.metadata).toMatchObject({ causationId: ok, depth: 1 });
    const mail = mails.find((m) => m.to.includes('ada@agency.test'));
    expect(mail?.raw).toMatch(/Subject: Welcome, Ada/);
    expect(mail?.raw).toMatch(/Recruit r-ada is now an agent\./);

    await emit(db, { type: 'recruit.graduated_to_agent', tenantId: tenant, aggregateId: 'r-bob', payload: { email: 'bob@bounce.test', name: 'Bob' } });
    const failed = await waitFor('email.failed', () => db.selectFrom('walflow.events').selectAll().where('tenant_id', '=', tenant).where('event_type', '=', 'email.failed').executeTakeFirst(), { timeoutMs: 30_000 });
    expect(failed.payload).toMatchObject({ error: expect.stringMatching(/550|mailbox unavailable/) });
    const dead = await db.selectFrom('walflow.workflow_runs').selectAll().where('tenant_id', '=', tenant).where('status', '=', 'dead').execute();
    expect(dead).toHaveLength(1);
    expect(dead[0]?.attempts).toBe(2);
  });

  it('calls a webhook with a signed CloudEvent, retries it, and does not repeat the actions that already succeeded', async () => {
    const tenant = 'hooks';
    failuresLeft.set('/hooks/policy', 1);
    await applyTestWorkflow(db, {
      tenant,
      name: 'notify-crm',
      trigger: { event: 'policy.approved' },
      actions: [
        { type: 'create_notification', recipient: 'u1', title: 'approved {{event.aggregateId}}' },
        { type: 'webhook', url: `http://127.0.0.1:${httpPort}/hooks/policy`, headers: { authorization: { secret: 'CRM_TOKEN' } } },
      ],
    });
    const eventId = await emit(db, { type: 'policy.approved', tenantId: tenant, aggregateType: 'policy', aggregateId: 'p7', payload: { policyId: 'p7' } });
    const run = await waitFor('the run to succeed', () =>
      db.selectFrom('walflow.workflow_runs').selectAll().where('event_id', '=', eventId).where('status', '=', 'succeeded').executeTakeFirst(), { timeoutMs: 30_000 },
    );
    expect(run.attempts).toBe(2);
    const calls = requests.filter((request) => request.path === '/hooks/policy');
    expect(calls).toHaveLength(2);
    const last = calls[1]!;
    expect(last.headers.authorization).toBe('token-123');
    expect(last.headers['webhook-id']).toBe(`${run.id}:1`);
    const verified = new Webhook(webhookSecret).verify(last.body, last.headers as Record<string, string>) as Record<string, unknown>;
    expect(verified).toMatchObject({ specversion: '1.0', id: eventId, type: 'policy.approved', data: { policyId: 'p7' } });
    const notifications = await db.selectFrom('walflow.notifications').select('title').where('tenant_id', '=', tenant).execute();
    expect(notifications).toEqual([{ title: 'approved p7' }]);
  });
});

describe('execution order and lifecycle', () => {
  it('runs one workflow’s runs for one aggregate in commit order, even across a retry', async () => {
    const tenant = 'ordering';
    failuresLeft.set('/ordering/1', 1);
    await applyTestWorkflow(db, { tenant, name: 'ordered', trigger: { event: 'policy.updated' }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${httpPort}/ordering/{{event.payload.n}}` }] });
    for (const n of [1, 2, 3]) await emit(db, { type: 'policy.updated', tenantId: tenant, aggregateType: 'policy', aggregateId: 'p1', payload: { n } });
    await waitFor('all three calls to succeed', () => requests.filter((r) => r.path.startsWith('/ordering/')).length === 4, { timeoutMs: 30_000 });
    expect(requests.filter((r) => r.path.startsWith('/ordering/')).map((r) => r.path)).toEqual(['/ordering/1', '/ordering/1', '/ordering/2', '/ordering/3']);
  });

  it('records inactive for the first event after a pause, and takes effect without a restart', async () => {
    const tenant = 'lifecycle';
    const definition = { tenant, name: 'pausable', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event' as const, event: 'x.done' }] };
    await applyTestWorkflow(db, definition);
    const before = await emit(db, { type: 'user.login', tenantId: tenant, payload: {} });
    await waitForDecisions([before], 1);
    await applyTestWorkflow(db, { ...definition, status: 'paused' });
    const after = await emit(db, { type: 'user.login', tenantId: tenant, payload: {} });
    await waitForDecisions([after], 1);
    expect((await decisionsFor(before))[0]?.outcome).toBe('fired');
    expect((await decisionsFor(after))[0]).toMatchObject({ outcome: 'inactive', reason: 'workflow is paused' });
  });

  it('pauses a workflow after consecutive dead runs and emits workflow.auto_paused', async () => {
    const tenant = 'autopause';
    const workflowId = await applyTestWorkflow(db, {
      tenant,
      name: 'always-fails',
      trigger: { event: 'commission.earned' },
      retry: { maxAttempts: 1 },
      autoPause: { afterConsecutiveFailures: 3 },
      actions: [{ type: 'update_field', table: 'crm_test.agents', key: { column: 'id', value: 'nobody' }, column: 'lifetime_commission', increment: 1 }],
    }, policy);
    for (let n = 0; n < 3; n++) await emit(db, { type: 'commission.earned', tenantId: tenant, payload: { n } });
    const paused = await waitFor('workflow.auto_paused', () =>
      db.selectFrom('walflow.events').selectAll().where('tenant_id', '=', tenant).where('event_type', '=', 'workflow.auto_paused').executeTakeFirst(), { timeoutMs: 30_000 },
    );
    expect(paused.payload).toMatchObject({ workflowId, name: 'always-fails', consecutiveFailures: 3, lastError: expect.stringMatching(/expected one row/) });
    const workflow = await db.selectFrom('walflow.workflows').select(['status', 'paused_reason']).where('id', '=', workflowId).executeTakeFirstOrThrow();
    expect(workflow.status).toBe('paused');
    expect(workflow.paused_reason).toMatch(/3 consecutive dead runs/);
    expect((await getWorkflowById(db, workflowId))?.pausedReason).toBe(workflow.paused_reason);
  });

  it('reports action durations by type and retries in /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${walflow.httpPort}/metrics`)).text();
    expect(text).toMatch(/^walflow_action_duration_seconds_count\{type="send_email",result="succeeded"\} [1-9]/m);
    expect(text).toMatch(/^walflow_action_duration_seconds_count\{type="webhook",result="failed"\} [1-9]/m);
    expect(text).toMatch(/^walflow_run_attempts_total\{result="retrying"\} [1-9]/m);
    expect(text).toMatch(/^walflow_run_attempts_total\{result="dead"\} [1-9]/m);
  });
});
