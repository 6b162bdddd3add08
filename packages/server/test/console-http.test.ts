import type { WalflowDatabase } from '@walflow/core';
import { emit } from '@walflow/outbox';
import type { WorkflowDefinitionInput } from '@walflow/executor';
import { listAudit, type HealthReport, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_TOKEN, ConsoleClient, csrfTokenIn, startConsoleWalflow, T1_TOKEN, T2_TOKEN } from './console-fixtures.js';
import { ConsoleAuth, SESSION_SECONDS } from '../src/console/session.js';
import { readInScope } from '../src/console/tenant-scope.js';
import { applyTestWorkflow } from './fixtures.js';

const database = useTestDatabase();
let walflow: RunningWalflow;
let db: Kysely<WalflowDatabase>;
let client: ConsoleClient;

/** Emits one event in its own transaction and waits until walflow recorded it and ran what it fired. */
async function emitRecorded(type: string, tenantId: string, payload: Record<string, unknown>): Promise<string> {
  const id = await db.transaction().execute((trx) => emit(trx, { type, tenantId, payload }));
  await waitFor(`event ${type} of ${tenantId} to be recorded and run`, async () => {
    const event = await db.selectFrom('walflow.events').select('id').where('id', '=', id).executeTakeFirst();
    const unfinished = await db.selectFrom('walflow.workflow_runs').select('id').where('event_id', '=', id).where('status', 'in', ['queued', 'running']).executeTakeFirst();
    return event !== undefined && unfinished === undefined;
  });
  return id;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * Workflow `count-<thing>` of tenant t1 on `<thing>.counted`: it counts into a row of `public.<thing>` that
 * does not exist, so its one attempt fails and the run is dead.
 */
/** The tables applyFailingCounter counts in: walflow's workers may write their count. */
const COUNTED = ['stock', 'shelf', 'crate', 'unaudited'] as const;

async function applyFailingCounter(thing: (typeof COUNTED)[number], extra: Partial<WorkflowDefinitionInput>): Promise<void> {
  await sql`CREATE TABLE ${sql.table(`public.${thing}`)} (sku text PRIMARY KEY, count integer NOT NULL DEFAULT 0)`.execute(db);
  await applyTestWorkflow(
    db,
    {
      tenant: 't1',
      name: `count-${thing}`,
      trigger: { event: `${thing}.counted` },
      actions: [{ type: 'update_field', table: `public.${thing}`, key: { column: 'sku', value: '{{event.payload.sku}}' }, column: 'count', increment: 1 }],
      retry: { maxAttempts: 1 },
      ...extra,
    },
    { updateFields: [`public.${thing}.count`] },
  );
}

beforeAll(async () => {
  walflow = await startConsoleWalflow(database.url, database.slotName, { updateFields: COUNTED.map((thing) => `public.${thing}.count`) });
  db = walflow.db;
  client = new ConsoleClient(walflow.httpPort!);
  for (const tenant of ['t1', 't2']) {
    await applyTestWorkflow(db, {
      tenant,
      name: 'notify-order',
      trigger: { event: 'order.placed' },
      actions: [{ type: 'create_notification', recipient: 'ops', title: 'order {{event.payload.orderId}}' }],
    });
  }
});
afterAll(async () => {
  await walflow?.stop();
});

describe('console authentication', () => {
  it('answers 401 with the sign-in form to every request without valid credentials, and leaves the other routes open', async () => {
    for (const path of ['/console', '/console/events', '/console/workflows', '/console/dead', '/console/events/stream', '/console/no-such-page']) {
      const response = await client.request(path);
      expect(response.status, path).toBe(401);
      expect(response.text).toContain('action="/console/login"');
    }
    expect((await client.request('/console', { headers: bearer('not-a-token-of-ours-at-all') })).status).toBe(401);
    expect((await client.request('/console', { headers: { cookie: 'walflow_console=forged.cookie' } })).status).toBe(401);
    const pause = await client.request('/console/workflows/pause', { form: { tenant: 't1', name: 'notify-order' }, headers: { origin: client.origin } });
    expect(pause.status).toBe(401);
    expect((await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 't1').executeTakeFirstOrThrow()).status).toBe('active');
    expect((await client.request('/healthz')).status).toBe(200);

    const wrong = await client.request('/console/login', { form: { name: 'mallory', token: 'guessing-the-token-here' }, headers: { origin: client.origin } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
  });

  it('signs in with a token and keeps the session in a signed HttpOnly, SameSite=Strict cookie that holds no token', async () => {
    const response = await client.request('/console/login', { form: { name: 'alice', token: CONSOLE_TOKEN }, headers: { origin: client.origin } });
    expect(response.status).toBe(303);
    const setCookie = response.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^walflow_console=[^;]+; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    expect(setCookie).not.toContain(CONSOLE_TOKEN);
    // Behind proxies that said the browser used HTTPS, the first of them naming the browser's scheme: Secure too.
    for (const proto of ['https', 'https, http', 'HTTPS']) {
      const behindProxy = await client.request('/console/login', { form: { name: 'alice', token: CONSOLE_TOKEN }, headers: { origin: client.origin, 'x-forwarded-proto': proto } });
      expect(behindProxy.headers.get('set-cookie'), proto).toMatch(/; Secure$/);
    }
    const cookie = setCookie.split(';')[0]!;
    const overview = await client.request('/console', { headers: { cookie } });
    expect(overview.status).toBe(200);
    expect(overview.text).toContain('alice');
    expect(overview.headers.get('content-security-policy')).toMatch(/script-src 'nonce-[^']+'/);

    // Changing one character of the signed value, or signing it as another tenant's session, opens nothing.
    const [name, value] = cookie.split('=') as [string, string];
    const [payload, signature] = value.split('.') as [string, string];
    const tampered = `${name}=${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    expect((await client.request('/console', { headers: { cookie: tampered } })).status).toBe(401);
    const asTenant = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), t: 't1' })).toString('base64url');
    expect((await client.request('/console', { headers: { cookie: `${name}=${asTenant}.${signature}` } })).status).toBe(401);
  });
  it('takes neither of two session cookies, one of them set by a sibling domain, and no notice signed for another session', async () => {
    const ours = await client.login('alice', CONSOLE_TOKEN);
    const planted = await client.login('mallory', T1_TOKEN);
    expect((await client.request('/console', { headers: { cookie: ours } })).status).toBe(200);
    // The browser sends both; which comes last is its choice, so neither opens anything.
    for (const both of [`${ours}; ${planted}`, `${planted}; ${ours}`]) {
      const refused = await client.request('/console', { headers: { cookie: both } });
      expect(refused.status).toBe(401);
      // Signing in again would not help: the page says what would.
      expect(refused.text).toContain('two walflow_console cookies');
    }
    // A notice cookie from elsewhere is not shown, and is cleared.
    const phishing = `walflow_console_notice=${encodeURIComponent('!Session key rotated: sign in at https://evil.example')}`;
    const page = await client.request('/console', { headers: { cookie: `${ours}; ${phishing}` } });
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('evil.example');
    expect(page.headers.get('set-cookie')).toMatch(/^walflow_console_notice=; .*Max-Age=0/);
  });

  it('marks every cookie Secure with WALFLOW_CONSOLE_SECURE_COOKIES, without a proxy saying HTTPS', async () => {
    const logged: { msg: string; operator?: string; tenant?: string | null; session?: string; address?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as (typeof logged)[number]) });
    const behindTls = await startConsoleWalflow(database.url, database.slotName, { role: 'http', consoleSecureCookies: true }, logger);
    try {
      const other = new ConsoleClient(behindTls.httpPort!);
      const response = await other.request('/console/login', { form: { name: 'alice', token: CONSOLE_TOKEN }, headers: { origin: other.origin } });
      expect(response.headers.get('set-cookie')).toMatch(/^walflow_console=[^;]+; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
      // The audit log names the operator as typed; the log ties that name to a session and an address.
      expect(logged.filter((entry) => entry.msg === 'console sign-in')).toEqual([
        expect.objectContaining({ operator: 'alice', tenant: null, session: expect.stringMatching(/^[\w-]{22}$/), address: expect.stringMatching(/127\.0\.0\.1/) }),
      ]);
    } finally {
      await behindTls.stop();
    }
  });

  it('refuses a session from its sign-out on, wherever its cookie comes from, and ends its live streams', async () => {
    const cookie = await client.login('carol', CONSOLE_TOKEN);
    const other = await client.login('carol', CONSOLE_TOKEN);
    // A session signed out long ago, past its expiry: forgotten at the next sign-out.
    await sql`INSERT INTO walflow.console_signed_out (session_id, expires_at) VALUES ('expired-session', now() - interval '1 hour')`.execute(db);
    const stream = await fetch(`${client.origin}/console/events/stream`, { headers: { cookie } });
    expect(stream.status).toBe(200);
    let ended = false;
    void stream.text().then(() => (ended = true), () => undefined);

    const csrf = csrfTokenIn((await client.request('/console', { headers: { cookie } })).text);
    const signOut = await client.request('/console/logout', { form: { _csrf: csrf }, headers: { cookie, origin: client.origin } });
    expect(signOut.status).toBe(303);
    expect(signOut.headers.get('set-cookie')).toMatch(/^walflow_console=; .*Max-Age=0/);
    // A copy of the cookie, kept from before, opens nothing; the operator's other session still does.
    expect((await client.request('/console', { headers: { cookie } })).status).toBe(401);
    expect((await client.request('/console', { headers: { cookie: other } })).status).toBe(200);
    await waitFor('the signed-out session’s live stream to end', () => ended, { timeoutMs: 5_000 });
    const listed = await sql<{ session_id: string }>`SELECT session_id FROM walflow.console_signed_out`.execute(db);
    expect(listed.rows).toHaveLength(1);
    expect(listed.rows[0]!.session_id).not.toBe('expired-session');
  });
});

describe('console actions', () => {
  it('refuses a cross-site POST and one without the page’s CSRF token, and audits the one that is ours', async () => {
    const cookie = await client.login('alice', CONSOLE_TOKEN);
    const csrf = csrfTokenIn((await client.request('/console/workflows', { headers: { cookie } })).text);
    const form = { tenant: 't1', name: 'notify-order', _csrf: csrf };

    const crossSite = await client.request('/console/workflows/pause', { form, headers: { cookie, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    const foreignOrigin = await client.request('/console/workflows/pause', { form, headers: { cookie, origin: 'http://evil.example' } });
    expect(foreignOrigin.status).toBe(403);
    const sameSite = await client.request('/console/workflows/pause', { form, headers: { cookie, 'sec-fetch-site': 'same-site' } });
    expect(sameSite.status).toBe(403);
    const noToken = await client.request('/console/workflows/pause', { form: { tenant: 't1', name: 'notify-order' }, headers: { cookie, origin: client.origin } });
    expect(noToken.status).toBe(403);
    const getInstead = await client.request('/console/workflows/pause?tenant=t1&name=notify-order', { headers: { cookie } });
    expect(getInstead.status).toBe(404);
    expect((await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 't1').executeTakeFirstOrThrow()).status).toBe('active');

    const ours = await client.request('/console/workflows/pause', { form, headers: { cookie, origin: client.origin, 'sec-fetch-site': 'same-origin' } });
    expect(ours.status).toBe(303);
    expect((await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 't1').executeTakeFirstOrThrow()).status).toBe('paused');
    const after = await client.request(ours.headers.get('location')!, { headers: { cookie: `${cookie}; ${(ours.headers.get('set-cookie') ?? '').split(';')[0]}` } });
    expect(after.text).toContain('Paused t1/notify-order.');

    // Behind a TLS proxy that rewrites Host, the browser's Origin is the public address: its Sec-Fetch-Site decides.
    const proxied = await client.request('/console/workflows/resume', { form, headers: { cookie, origin: 'https://console.example', 'sec-fetch-site': 'same-origin' } });
    expect(proxied.status).toBe(303);
    expect((await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 't1').executeTakeFirstOrThrow()).status).toBe('active');
    const paused = await client.request('/console/workflows/pause', { form, headers: { cookie, origin: client.origin, 'sec-fetch-site': 'same-origin' } });
    expect(paused.status).toBe(303);

    const resumed = await client.request('/console/workflows/resume', { form: { tenant: 't1', name: 'notify-order' }, headers: { ...bearer(CONSOLE_TOKEN) } });
    expect(resumed.status).toBe(303);
    const audit = await listAudit(db, { since: new Date(Date.now() - 60_000), limit: 10 });
    expect(audit.map((entry) => [entry.actor, entry.action, entry.target])).toEqual([
      ['bearer token (console)', 'workflow.resume', 't1/notify-order'],
      ['alice (console)', 'workflow.pause', 't1/notify-order'],
      ['alice (console)', 'workflow.resume', 't1/notify-order'],
      ['alice (console)', 'workflow.pause', 't1/notify-order'],
    ]);
  });

  it('refuses to pause or resume a workflow its document disables', async () => {
    await applyTestWorkflow(db, { tenant: 't1', name: 'switched-off', status: 'disabled', trigger: { event: 'order.placed' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'off' }] });
    for (const verb of ['resume', 'pause']) {
      const refused = await client.request(`/console/workflows/${verb}`, { form: { tenant: 't1', name: 'switched-off' }, headers: bearer(T1_TOKEN) });
      expect(refused.status, verb).toBe(409);
      expect(refused.text).toContain('t1/switched-off is disabled by its document');
    }
    expect((await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 't1').where('name', '=', 'switched-off').executeTakeFirstOrThrow()).status).toBe('disabled');
    // From a signed-in browser's form, the refusal goes back to the form's page, saying why.
    const cookie = await client.login('grace', CONSOLE_TOKEN);
    const csrf = csrfTokenIn((await client.request('/console/workflows', { headers: { cookie } })).text);
    const refused = await client.request('/console/workflows/pause', { form: { tenant: 't1', name: 'switched-off', _csrf: csrf }, headers: { cookie, origin: client.origin, 'sec-fetch-site': 'same-origin' } });
    expect(refused.status).toBe(303);
    expect(refused.headers.get('location')).toBe('/console/workflows');
    const page = await client.request('/console/workflows', { headers: { cookie: `${cookie}; ${(refused.headers.get('set-cookie') ?? '').split(';')[0]}` } });
    expect(page.text).toMatch(/class="notice error"[^>]*>[^<]*t1\/switched-off is disabled by its document/);
  });

  it('discards a dead run, audited, and says so when it is gone already', async () => {
    await applyFailingCounter('stock', {});
    const eventId = await emitRecorded('stock.counted', 't1', { sku: 'missing' });
    const run = await db.selectFrom('walflow.workflow_runs').select(['id', 'status']).where('event_id', '=', eventId).executeTakeFirstOrThrow();
    expect(run.status).toBe('dead');
    const dead = await client.request('/console/dead', { headers: bearer(CONSOLE_TOKEN) });
    expect(dead.text).toContain(run.id);

    expect((await client.request('/console/runs/discard', { form: { one: run.id }, headers: bearer(CONSOLE_TOKEN) })).status).toBe(303);
    expect((await db.selectFrom('walflow.workflow_runs').select('status').where('id', '=', run.id).executeTakeFirstOrThrow()).status).toBe('cancelled');
    const again = await client.request('/console/runs/discard', { form: { one: run.id }, headers: bearer(CONSOLE_TOKEN) });
    expect(again.status).toBe(409);
    expect(again.text).toContain(`no dead run ${run.id}`);
    const audit = await listAudit(db, { since: new Date(Date.now() - 60_000), limit: 1 });
    expect(audit[0]).toMatchObject({ actor: 'bearer token (console)', action: 'run.discard', target: run.id });
  });
});

describe('dead letters in the console', () => {
  it('are discarded or put back into the outbox, one or the ticked ones, each audited; a refusal says how many went before it', async () => {
    // Not JSON objects: each parked by the consumer as an open dead letter.
    for (let n = 0; n < 3; n++) await sql`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('t1', 'order.placed', '[1]')`.execute(db);
    const open = () => db.selectFrom('walflow.dead_letters').select(['id', 'outbox_id']).where('tenant_id', '=', 't1').where('event_type', '=', 'order.placed').where('resolved_at', 'is', null).execute();
    const [a, b, c] = await waitFor('three dead letters', async () => {
      const letters = await open();
      return letters.length === 3 && letters;
    });
    const resolution = async (id: string) => (await db.selectFrom('walflow.dead_letters').select('resolution').where('id', '=', id).executeTakeFirstOrThrow()).resolution;

    const discarded = await client.request('/console/dead-letters/discard', { form: { one: a!.id }, headers: bearer(CONSOLE_TOKEN) });
    expect(discarded.status).toBe(303);
    expect(decodeURIComponent(discarded.headers.get('set-cookie') ?? '')).toContain('Discarded 1 dead letter.');
    expect(await resolution(a!.id)).toBe('discarded');

    const retried = await client.request('/console/dead-letters/retry', { form: { ids: [b!.id, c!.id] }, headers: bearer(CONSOLE_TOKEN) });
    expect(retried.status).toBe(303);
    expect(decodeURIComponent(retried.headers.get('set-cookie') ?? '')).toContain('Retried 2 dead letters.');
    expect([await resolution(b!.id), await resolution(c!.id)]).toEqual(['retried', 'retried']);
    // Back in the outbox under their own ids, and parked again, as letters of their own: nothing was lost.
    await waitFor('the retried rows to be parked again', async () => {
      const again = await open();
      return again.length === 2 && new Set(again.map((letter) => letter.outbox_id)).size === 2 && again.every((letter) => [b!.outbox_id, c!.outbox_id].includes(letter.outbox_id));
    });
    const audited = await db.selectFrom('walflow.audit_log').select(['action', 'target']).where('target', 'in', [a!.id, b!.id, c!.id]).orderBy('id').execute();
    expect(audited).toEqual([
      { action: 'dead_letter.discard', target: a!.id },
      { action: 'dead_letter.retry', target: b!.id },
      { action: 'dead_letter.retry', target: c!.id },
    ]);

    // The first is open no more: a retry of [a new one, a, another] does the first, refuses a, and stops there.
    const [d, e] = await open();
    const partly = await client.request('/console/dead-letters/retry', { form: { ids: [d!.id, a!.id, e!.id] }, headers: bearer(CONSOLE_TOKEN) });
    expect(partly.status).toBe(409);
    expect(partly.text).toContain('(1 done before it)');
    expect([await resolution(d!.id), await resolution(e!.id)]).toEqual(['retried', null]);
  });
});

describe('an action whose audit entry cannot be written', () => {
  it('is not done: the change and its entry commit together, for dead runs and for pausing a workflow', async () => {
    await applyFailingCounter('unaudited', {});
    const eventId = await emitRecorded('unaudited.counted', 't1', { sku: 'missing' });
    const run = await db.selectFrom('walflow.workflow_runs').select(['id', 'status', 'workflow_id']).where('event_id', '=', eventId).executeTakeFirstOrThrow();
    expect(run.status).toBe('dead');
    const workflow = await db.selectFrom('walflow.workflows').select(['tenant_id', 'name', 'status']).where('id', '=', run.workflow_id).executeTakeFirstOrThrow();
    await sql`CREATE FUNCTION public.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is full'; END $$`.execute(db);
    await sql`CREATE TRIGGER refuse_audit BEFORE INSERT ON walflow.audit_log FOR EACH ROW EXECUTE FUNCTION public.refuse_audit()`.execute(db);
    try {
      for (const verb of ['discard', 'retry']) {
        expect((await client.request(`/console/runs/${verb}`, { form: { one: run.id }, headers: bearer(CONSOLE_TOKEN) })).status, verb).toBe(500);
        expect((await db.selectFrom('walflow.workflow_runs').select('status').where('id', '=', run.id).executeTakeFirstOrThrow()).status, verb).toBe('dead');
      }
      const pause = await client.request('/console/workflows/pause', { form: { tenant: workflow.tenant_id, name: workflow.name }, headers: bearer(CONSOLE_TOKEN) });
      expect(pause.status).toBe(500);
      expect((await db.selectFrom('walflow.workflows').select('status').where('id', '=', run.workflow_id).executeTakeFirstOrThrow()).status).toBe(workflow.status);
    } finally {
      await sql`DROP TRIGGER refuse_audit ON walflow.audit_log`.execute(db);
    }
  });
});

describe('what the console shows', () => {
  it('shows a payload holding markup as text, in the list and in the explain view', async () => {
    const attack = '<script>alert("walflow")</script><img src=x onerror=alert(1)>';
    const id = await emitRecorded('order.placed', 't1', { orderId: 'o-1', note: attack });
    for (const path of ['/console/events?since=-10m', `/console/events/${id}`]) {
      const page = await client.request(path, { headers: bearer(CONSOLE_TOKEN) });
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('<script>alert');
      expect(page.text).not.toContain('<img src=x');
      expect(page.text).toContain('&lt;script&gt;alert(');
      expect(page.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    }
  });

  it('lists a workflow whose stored definition cannot be read beside the others, saying so', async () => {
    await applyTestWorkflow(db, { tenant: 't2', name: 'hand-edited', trigger: { event: 'never.happens' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'x' }] });
    await sql`UPDATE walflow.workflows SET definition = jsonb_set(definition, '{actions}', '"not a list"') WHERE tenant_id = 't2' AND name = 'hand-edited'`.execute(db);
    try {
      const page = await client.request('/console/workflows', { headers: bearer(T2_TOKEN) });
      expect(page.status).toBe(200);
      expect(page.text).toContain('notify-order');
      expect(page.text).toMatch(/hand-edited[\s\S]*its stored definition cannot be read \(apply it again\)/);
    } finally {
      await sql`DELETE FROM walflow.workflows WHERE tenant_id = 't2' AND name = 'hand-edited'`.execute(db);
    }
  });

  it('shows why a workflow paused itself', async () => {
    await applyFailingCounter('shelf', { autoPause: { afterConsecutiveFailures: 1 } });
    await emitRecorded('shelf.counted', 't1', { sku: 'missing' });
    await waitFor('the workflow to pause itself', async () =>
      (await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 't1').where('name', '=', 'count-shelf').executeTakeFirstOrThrow()).status === 'paused',
    );
    const page = await client.request('/console/workflows', { headers: bearer(CONSOLE_TOKEN) });
    const row = page.text.slice(page.text.indexOf('data-workflow="count-shelf"'));
    expect(row.slice(0, row.indexOf('</tr>'))).toMatch(/<small class="paused-reason">paused after 1 consecutive dead runs; last error: [^<]*expected one row/);
    const notify = page.text.slice(page.text.indexOf('data-workflow="notify-order"'));
    expect(notify.slice(0, notify.indexOf('</tr>'))).not.toContain('paused-reason');

    // A Pause clicked on a page drawn before walflow paused it changes nothing: the reason stays, no one is audited.
    const stale = await client.request('/console/workflows/pause', { form: { tenant: 't1', name: 'count-shelf' }, headers: bearer(CONSOLE_TOKEN) });
    expect(stale.status).toBe(303);
    expect(decodeURIComponent(stale.headers.get('set-cookie') ?? '')).toContain('t1/count-shelf was already paused: nothing changed.');
    const after = await db.selectFrom('walflow.workflows').select(['status', 'paused_reason']).where('tenant_id', '=', 't1').where('name', '=', 'count-shelf').executeTakeFirstOrThrow();
    expect(after).toMatchObject({ status: 'paused', paused_reason: expect.stringMatching(/^paused after 1 consecutive dead runs/) });
    expect((await listAudit(db, { since: new Date(Date.now() - 60_000), limit: 10 })).filter((entry) => entry.target === 't1/count-shelf')).toEqual([]);
  });

  it('shows an operator fixed to a tenant only that tenant’s rows, read through row-level security', async () => {
    // The reads of such an operator run as a role that is neither superuser nor the tables' owner.
    const reader = await readInScope(db, 't1', async (trx) => {
      const { rows } = await sql<{ role: string; superuser: boolean; owner: boolean; tenant: string }>`
        SELECT current_user AS role, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
               pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'walflow.events'::regclass), 'USAGE') AS owner,
               current_setting('walflow.tenant_id') AS tenant`.execute(trx);
      return rows[0];
    });
    expect(reader).toEqual({ role: 'walflow_console', superuser: false, owner: false, tenant: 't1' });

    const own = await emitRecorded('order.placed', 't1', { orderId: 'own' });
    const other = await emitRecorded('order.placed', 't2', { orderId: 'other' });
    const t1 = bearer(T1_TOKEN);

    const list = await client.request('/console/events?since=-10m&tenant=t2', { headers: t1 });
    expect(list.status).toBe(200);
    expect(list.text).toContain(own);
    expect(list.text).not.toContain(other);
    const everyone = await client.request('/console/events?since=-10m', { headers: bearer(CONSOLE_TOKEN) });
    expect(everyone.text).toContain(own);
    expect(everyone.text).toContain(other);

    // Explain reads events, decisions, workflows, runs and action outcomes as walflow_console.
    const explained = await client.request(`/console/events/${own}`, { headers: t1 });
    expect(explained.status).toBe(200);
    expect(explained.text).toMatch(/notify-order<\/td><td>1<\/td><td><span class="badge fired">fired/);
    expect(explained.text).toMatch(/create_notification: <span class="badge succeeded">succeeded/);
    expect((await client.request(`/console/events/${other}`, { headers: t1 })).status).toBe(404);
    // No page reads another tenant's outcomes today; row security would keep them out all the same.
    const outcomesRead = await readInScope(db, 't1', (trx) => trx.selectFrom('walflow.action_outcomes').select('run_id').execute());
    const runTenants = await db.selectFrom('walflow.workflow_runs').select(['id', 'tenant_id']).where('event_id', 'in', [own, other]).execute();
    const readRuns = new Set(outcomesRead.map((row) => row.run_id));
    expect(runTenants.map((run) => [run.tenant_id, readRuns.has(run.id)])).toEqual(expect.arrayContaining([['t1', true], ['t2', false]]));
    expect(runTenants).toHaveLength(2);

    const workflows = await client.request('/console/workflows', { headers: t1 });
    expect(workflows.text).toContain('data-workflow="notify-order"');
    expect(workflows.text).not.toContain('tenant t2');
    const pauseOther = await client.request('/console/workflows/pause', { form: { tenant: 't2', name: 'notify-order' }, headers: t1 });
    expect(pauseOther.status).toBe(404);
    expect((await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', 't2').executeTakeFirstOrThrow()).status).toBe('active');
    const otherRun = await db.selectFrom('walflow.workflow_runs').select('id').where('event_id', '=', other).executeTakeFirstOrThrow();
    expect((await client.request('/console/runs/retry', { form: { one: otherRun.id }, headers: t1 })).status).toBe(404);
  });

  it('shows an operator fixed to a tenant its own health figures and the shared pipeline as a bare state', async () => {
    const own = await emitRecorded('order.placed', 't2', { orderId: 'on-the-overview' });
    // Tenant t1's dead run, and the last event walflow recorded: t2's operator sees neither.
    await applyFailingCounter('crate', {});
    const other = await emitRecorded('crate.counted', 't1', { sku: 'missing' });
    const committedAt = async (id: string) =>
      (await db.selectFrom('walflow.events').select(sql<string>`to_json(committed_at) #>> '{}'`.as('at')).where('id', '=', id).executeTakeFirstOrThrow()).at;
    const deadRuns = await db.selectFrom('walflow.workflow_runs').select(sql<number>`count(*)::int`.as('n')).where('status', '=', 'dead').executeTakeFirstOrThrow();
    expect(deadRuns.n).toBeGreaterThan(0);
    await waitFor('the health report to count every dead run', async () => ((await (await fetch(`${client.origin}/health`)).json()) as HealthReport).runs.dead === deadRuns.n);

    const everyone = (await client.request('/console', { headers: bearer(CONSOLE_TOKEN) })).text;
    for (const figure of [`${deadRuns.n} dead run`, 'Events recorded per second', 'oldest unrecorded outbox row', `replication slot ${database.slotName}`, await committedAt(other)]) {
      expect(everyone).toContain(figure);
    }
    const t2 = (await client.request('/console', { headers: bearer(T2_TOKEN) })).text;
    expect(t2).toMatch(/<td>dead_runs<\/td><td><span class="badge ok">ok<\/span><\/td><td>0 dead runs<\/td>/);
    expect(t2).toMatch(/<td>oldest_queued_run<\/td><td><span class="badge ok">ok<\/span><\/td><td>oldest runnable queued run waits 0\.0 s<\/td>/);
    expect(t2).toMatch(/<td>pipeline<\/td><td><span class="badge (ok|degraded|down)">\w+<\/span><\/td><td>consumer, slot, lag and sink, shared by every tenant<\/td>/);
    expect(t2).toContain(await committedAt(own));
    for (const figure of [`${deadRuns.n} dead run`, 'Events recorded per second', 'Replication lag', 'outbox row', 'replication slot', 'streaming since', await committedAt(other)]) {
      expect(t2).not.toContain(figure);
    }
  });

  it('backtests a time range as a dry run: counts what would be decided, creates nothing', async () => {
    await emitRecorded('order.placed', 't2', { orderId: 'backtested' });
    const before = await db.selectFrom('walflow.decisions').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
    const result = await client.request('/console/workflows/backtest', { form: { from: '-10m', to: 'now', workflow: '', type: 'order.*', tenant: 't2' }, headers: bearer(CONSOLE_TOKEN) });
    expect(result.status).toBe(200);
    const t2Orders = await db.selectFrom('walflow.events').select(sql<number>`count(*)::int`.as('n')).where('tenant_id', '=', 't2').where('event_type', '=', 'order.placed').executeTakeFirstOrThrow();
    expect(result.text).toContain(`${t2Orders.n} events replayed`);
    expect(result.text).toMatch(new RegExp(`<td>notify-order</td><td><span class="badge fired">fired</span> ${t2Orders.n} </td>`));
    const after = await db.selectFrom('walflow.decisions').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);

    const bad = await client.request('/console/workflows/backtest', { form: { from: 'yesterday', to: 'now', workflow: '', type: '', tenant: '' }, headers: bearer(CONSOLE_TOKEN) });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('not a time: &quot;yesterday&quot;');
  });

  it("backtests a tenant token's own tenant, whatever tenant its form names", async () => {
    const orders = async (tenant: string) =>
      (await db.selectFrom('walflow.events').select(sql<number>`count(*)::int`.as('n')).where('tenant_id', '=', tenant).where('event_type', '=', 'order.placed').executeTakeFirstOrThrow()).n;
    await emitRecorded('order.placed', 't1', { orderId: 'own-backtest' });
    // t2 has more orders than t1, so that a count of theirs cannot pass for t1's.
    while ((await orders('t2')) <= (await orders('t1'))) await emitRecorded('order.placed', 't2', { orderId: 'other-backtest' });
    const t1Orders = await orders('t1');
    for (const tenant of ['t2', '']) {
      const result = await client.request('/console/workflows/backtest', { form: { from: '-10m', to: 'now', workflow: '', type: 'order.*', tenant }, headers: bearer(T1_TOKEN) });
      expect(result.status, tenant).toBe(200);
      expect(result.text, tenant).toContain(`${t1Orders} events replayed`);
    }
  });

  it('backtests one workflow or one event type prefix when the form names it', async () => {
    await applyTestWorkflow(db, { tenant: 't3', name: 'notify-order', trigger: { event: 'order.placed' }, actions: [{ type: 'emit_event', event: 'order.noted' }] });
    await applyTestWorkflow(db, { tenant: 't3', name: 'also-on-order', trigger: { event: 'order.*' }, actions: [{ type: 'emit_event', event: 'audit.noted' }] });
    await emitRecorded('order.placed', 't3', { orderId: 'o1' });
    await emitRecorded('order.placed', 't3', { orderId: 'o2' });
    await emitRecorded('user.login', 't3', {});
    const notifyOrder = await db.selectFrom('walflow.workflows').select('id').where('tenant_id', '=', 't3').where('name', '=', 'notify-order').executeTakeFirstOrThrow();
    const backtest = (form: Record<string, string>) =>
      client.request('/console/workflows/backtest', { form: { from: '-10m', to: 'now', workflow: '', type: '', tenant: 't3', ...form }, headers: bearer(CONSOLE_TOKEN) });

    const oneWorkflow = await backtest({ workflow: notifyOrder.id });
    expect(oneWorkflow.status).toBe(200);
    expect(oneWorkflow.text).toContain('<td>notify-order</td>');
    expect(oneWorkflow.text).not.toContain('<td>also-on-order</td>');
    const logins = await backtest({ type: 'user.*' });
    expect(logins.text).toContain('1 events replayed');
    const refused = await backtest({ workflow: 'nope' });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('not a workflow id: nope');
  });

  it('answers 400, saying why, to a time PostgreSQL cannot hold and to text with a control character', async () => {
    const headers = bearer(CONSOLE_TOKEN);
    const ancient = await client.request('/console/events?since=-5000000d', { headers });
    expect(ancient.status).toBe(400);
    expect(ancient.text).toContain('not a time PostgreSQL can hold: &quot;-5000000d&quot;');
    for (const path of ['/console/events?type=%00', '/console/events?tenant=%00', '/console/events/stream?type=%00', '/console/events/stream?tenant=a%00b']) {
      const refused = await client.request(path, { headers });
      expect(refused.status, path).toBe(400);
      expect(refused.text, path).toMatch(/(type|tenant) contains a control character/);
    }
    const pause = await client.request('/console/workflows/pause', { form: { tenant: 't1', name: 'notify-order\u0000' }, headers });
    expect(pause.status).toBe(400);
    expect(pause.text).toContain('name contains a control character');
    const backtest = await client.request('/console/workflows/backtest', { form: { from: '-5000000d', to: 'now', workflow: '', type: '', tenant: '' }, headers });
    expect(backtest.status).toBe(400);
    expect(backtest.text).toContain('not a time PostgreSQL can hold');
  });

  it('ends a live stream when the session that opened it expires', async () => {
    // A session signed as the console signs them, issued so that it expires a second or two from now.
    const issuer = new ConsoleAuth({ token: CONSOLE_TOKEN, tenantTokens: new Map() }, () => Date.now() - SESSION_SECONDS * 1000 + 1500);
    const { cookie: session } = issuer.issueSession({ name: 'alice', tenant: null });
    const expiresAt = (JSON.parse(Buffer.from(session.split('.')[0]!, 'base64url').toString()) as { e: number }).e * 1000;
    const stream = await fetch(`${client.origin}/console/events/stream`, { headers: { cookie: `walflow_console=${session}` } });
    expect(stream.status).toBe(200);
    let ended = false;
    void stream.text().then(() => (ended = true), () => undefined);
    await waitFor('the stream to end', () => ended, { timeoutMs: 5_000 });
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    expect((await client.request('/console', { headers: { cookie: `walflow_console=${session}` } })).status).toBe(401);
  });

  it('streams newly recorded events of the operator’s scope only', async () => {
    const stream = await fetch(`${client.origin}/console/events/stream?type=order.*`, { headers: bearer(T1_TOKEN) });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const other = await emitRecorded('order.placed', 't2', { orderId: 'not-for-t1' });
    const own = await emitRecorded('order.placed', 't1', { orderId: 'for-t1' });
    const received = await readStreamUntil(stream, own, 'the stream to carry the t1 event');
    expect(received).toMatch(new RegExp(`id: [^|]+\\|${own}\\nevent: recorded\\ndata: \\{"id":"${own}","type":"order.placed","tenant":"t1"`));
    expect(received).not.toContain(other);
  });

  it('filters the list by type prefix, tenant and until, and the stream by type prefix and tenant, for an operator of every tenant', async () => {
    const headers = bearer(CONSOLE_TOKEN);
    const stream = await fetch(`${client.origin}/console/events/stream?type=order.*&tenant=t1`, { headers });
    const wanted = await emitRecorded('order.placed', 't1', { orderId: 'filtered-in' });
    const otherTenant = await emitRecorded('order.placed', 't2', { orderId: 'filtered-out' });
    const otherType = await emitRecorded('user.login', 't1', {});
    const last = await emitRecorded('order.placed', 't1', { orderId: 'filtered-in-last' });
    const streamed = await readStreamUntil(stream, last, 'the stream to carry the last t1 order');
    expect(streamed).toContain(wanted);
    expect(streamed).not.toContain(otherTenant);
    expect(streamed).not.toContain(otherType);

    const listed = (await client.request('/console/events?since=-10m&type=order.*&tenant=t1', { headers })).text;
    expect([listed.includes(wanted), listed.includes(otherTenant), listed.includes(otherType), listed.includes(last)]).toEqual([true, false, false, true]);
    const { committed_at: lastCommitted } = await db.selectFrom('walflow.events').select(sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at')).where('id', '=', last).executeTakeFirstOrThrow();
    const until = (await client.request(`/console/events?since=-10m&type=order.*&tenant=t1&until=${encodeURIComponent(lastCommitted)}`, { headers })).text;
    expect([until.includes(wanted), until.includes(last)]).toEqual([true, false]);
  });

  it('streams a live page from where the page read its list: an event recorded before the stream opens is not lost', async () => {
    const page = await client.request('/console/events?live=1&type=order.*', { headers: bearer(T1_TOKEN) });
    const from = /<table id="events" data-from="([^"]+)">/.exec(page.text)?.[1];
    expect(from).toMatch(/^\d{4}-.+\|[0-9a-f-]{36}$/);
    // Recorded after the list was read, before the browser opened the stream.
    const between = await emitRecorded('order.placed', 't1', { orderId: 'between' });
    const stream = await fetch(`${client.origin}/console/events/stream?type=order.*&from=${encodeURIComponent(from!)}`, { headers: bearer(T1_TOKEN) });
    await readStreamUntil(stream, between, 'the stream to carry the event recorded in between');
  });
});

/** What a live stream sent until it sent `text`, then the stream is let go. */
async function readStreamUntil(stream: Response, text: string, description: string): Promise<string> {
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  let received = '';
  try {
    await waitFor(description, async () => {
      const { value } = await reader.read();
      received += value ?? '';
      return received.includes(text);
    });
  } finally {
    await reader.cancel();
  }
  return received;
}
