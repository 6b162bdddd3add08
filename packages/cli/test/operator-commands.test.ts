import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqlState, sqlStateOf } from '@walflow/core';
import { applyWorkflow, Dispatcher } from '@walflow/executor';
import { emit, emitMany } from '@walflow/outbox';
import { createDatabase, loadConfig, migrate, RETENTION_ACTOR, startWalflow, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, holdOpen } from '../../server/test/fixtures.js';
import { runWalflow, spawnWalflow, type WalflowChild } from './walflow-process.js';

const database = useTestDatabase();
const logger = pino({ level: 'silent' });
let walflow: RunningWalflow;
let env: Record<string, string>;

beforeAll(async () => {
  env = { DATABASE_URL: database.url, WALFLOW_SLOT: database.slotName, WALFLOW_HTTP_PORT: '0', WALFLOW_LOG_LEVEL: 'silent', WALFLOW_WORKER_POLL_MS: '100' };
  const db = createDatabase(database.url, logger);
  await migrate({ db, slotName: database.slotName, logger });
  await db.destroy();
  walflow = await startWalflow(loadConfig(env), logger);
});
afterAll(async () => {
  await walflow?.stop();
});

describe('walflow explain', () => {
  it('shows the decisions with their reasons (a cooldown with its end), the runs and the chain both ways', async () => {
    const { db } = walflow;
    await applyWorkflow(db, { tenant: 'x', name: 'greet', trigger: { event: 'recruit.graduated_to_agent' }, cooldown: { seconds: 600 }, actions: [{ type: 'emit_event', event: 'agent.welcomed' }] });
    const first = await emit(db, { type: 'recruit.graduated_to_agent', tenantId: 'x', aggregateType: 'recruit', aggregateId: 'r1', payload: {} });
    const second = await emit(db, { type: 'recruit.graduated_to_agent', tenantId: 'x', aggregateType: 'recruit', aggregateId: 'r2', payload: {} });
    const welcomed = await waitFor('the follow-up event', () => db.selectFrom('walflow.events').select('id').where('event_type', '=', 'agent.welcomed').executeTakeFirst());
    await waitFor('the second decision', () => db.selectFrom('walflow.decisions').select('outcome').where('event_id', '=', second).executeTakeFirst());

    const fired = await runWalflow(['explain', first], env);
    expect(fired.code).toBe(0);
    expect(fired.output).toMatch(/greet v1: fired/);
    expect(fired.output).toMatch(/succeeded after 1 attempt/);
    expect(fired.output).toMatch(/action 0 emit_event: succeeded/);
    expect(fired.output).toContain(`led to\n  ${welcomed.id}  agent.welcomed`);

    const cooled = await runWalflow(['explain', second, '--json'], env);
    const explanation = JSON.parse(cooled.stdout) as { decisions: { outcome: string; detail: { until: string } }[] };
    expect(explanation.decisions).toEqual([expect.objectContaining({ outcome: 'cooldown', detail: expect.objectContaining({ until: expect.any(String), seconds: 600 }) })]);

    const effect = await runWalflow(['explain', welcomed.id], env);
    expect(effect.output).toContain(`caused by\n  ${first}  recruit.graduated_to_agent`);

    const missing = await runWalflow(['explain', '00000000-0000-0000-0000-000000000000'], env);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/no recorded event/);
    const malformed = await runWalflow(['explain', 'not-a-uuid'], env);
    expect(malformed.code).toBe(2);
    expect(malformed.output).toMatch(/not an event id \(a uuid\): not-a-uuid/);
  });
});

describe('walflow replay', () => {
  it('re-runs a range with guard state of its own; the runs’ events carry the replay id; a dry run creates nothing', async () => {
    const { db } = walflow;
    // Absolute times: the derived replay id comes from the range, so the same range is the same replay.
    const from = new Date(Date.now() - 10 * 60_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const dry = await runWalflow(['replay', '--from', from, '--to', to, '--tenant', 'x', '--type', 'recruit.*', '--dry-run', '--json'], env);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, events: 2, runsQueued: 0, workflows: { greet: { fired: 1, cooldown: 1 } } });

    const real = await runWalflow(['replay', '--from', from, '--to', to, '--tenant', 'x', '--type', 'recruit.*', '--json'], env);
    const summary = JSON.parse(real.stdout) as { replayId: string; runsQueued: number };
    expect(summary.runsQueued).toBe(1);
    const emitted = await waitFor('the replayed run’s event', () =>
      db.selectFrom('walflow.events').select('metadata').where(sql<boolean>`metadata->>'replayId' = ${summary.replayId}`).executeTakeFirst(),
    );
    expect(emitted.metadata).toMatchObject({ replayId: summary.replayId, depth: 1 });
    // The replay is audited under its id, with the range it resolved to; the dry run is not.
    const audited = await db.selectFrom('walflow.audit_log').select(['target', 'arguments']).where('action', '=', 'replay').execute();
    expect(audited.filter((entry) => entry.target === summary.replayId)).toEqual([{ target: summary.replayId, arguments: expect.objectContaining({ range: expect.anything() }) }]);
    expect(audited.filter((entry) => entry.target?.endsWith('-dry-run'))).toEqual([]);
    const again = await runWalflow(['replay', '--from', from, '--to', to, '--tenant', 'x', '--type', 'recruit.*'], env);
    expect(again.stdout).toContain(`replay ${summary.replayId}: 2 events, 0 runs queued; 2 pairs already decided by this replay`);
    // --again: a fresh id, which decides the range once more; --ignore-guards: the cooldown holds back nothing.
    const fresh = JSON.parse((await runWalflow(['replay', '--from', from, '--to', to, '--tenant', 'x', '--type', 'recruit.*', '--again', '--json'], env)).stdout) as { replayId: string; runsQueued: number };
    expect(fresh.replayId).not.toBe(summary.replayId);
    expect(fresh.runsQueued).toBe(1);
    const unguarded = await runWalflow(['replay', '--from', from, '--to', to, '--tenant', 'x', '--type', 'recruit.*', '--again', '--ignore-guards', '--dry-run', '--json'], env);
    expect(JSON.parse(unguarded.stdout)).toMatchObject({ workflows: { greet: { fired: 2 } } });
    // explain tells the replay's run from the live one.
    const replayedRun = await db.selectFrom('walflow.workflow_runs').select(['id', 'event_id']).where('replay_id', '=', summary.replayId).executeTakeFirstOrThrow();
    const explained = (await runWalflow(['explain', replayedRun.event_id], env)).stdout;
    expect(explained).toContain(`  ${replayedRun.id}  greet (replay ${summary.replayId}): `);
    expect(explained).toMatch(/^ {2}\S+ {2}greet: succeeded/m);
  });

  it('records a replay that fails once started in the audit log, under its id, with why; one refused before it started, not', async () => {
    const { db } = walflow;
    const refused = await runWalflow(['replay', '--from', '-1h', '--to', 'now', '--workflow', 'no-such-workflow', '--replay-id', 'refused-replay'], env);
    expect(refused.code).toBe(1);
    expect(await db.selectFrom('walflow.audit_log').select('id').where('target', '=', 'refused-replay').execute()).toEqual([]);

    await applyWorkflow(db, { tenant: 'audit-fail', name: 'noted', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    const event = await emit(db, { type: 'user.login', tenantId: 'audit-fail', payload: {} });
    await waitFor('the event to be recorded', () => db.selectFrom('walflow.events').select('id').where('id', '=', event).executeTakeFirst());
    // Its runs cannot be written: the replay fails on its first page, after it started.
    await sql`CREATE FUNCTION public.refuse_replayed_run() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'no runs for audit-fail now'; END $$`.execute(db);
    await sql`CREATE TRIGGER refuse_replayed_run BEFORE INSERT ON walflow.workflow_runs FOR EACH ROW WHEN (NEW.tenant_id = 'audit-fail' AND NEW.replay_id IS NOT NULL)
      EXECUTE FUNCTION public.refuse_replayed_run()`.execute(db);
    try {
      const failed = await runWalflow(['replay', '--from', '-1h', '--to', 'now', '--tenant', 'audit-fail'], env);
      expect(failed.code).toBe(1);
    } finally {
      await sql`DROP TRIGGER refuse_replayed_run ON walflow.workflow_runs`.execute(db);
      await sql`DROP FUNCTION public.refuse_replayed_run()`.execute(db);
    }
    const audited = await db.selectFrom('walflow.audit_log').select(['target', 'arguments']).where('action', '=', 'replay').where(sql<boolean>`arguments->>'tenant' = 'audit-fail'`).execute();
    expect(audited).toEqual([{ target: expect.stringMatching(/^replay-/), arguments: expect.objectContaining({ failed: expect.stringContaining('no runs for audit-fail now') }) }]);
  });

  it('stops before its next page on SIGINT, keeping and auditing the pages it replayed', async () => {
    const { db } = walflow;
    await applyWorkflow(db, { tenant: 'interrupt', name: 'noted', trigger: { event: 'user.login' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'login' }] });
    await db.transaction().execute((trx) => emitMany(trx, Array.from({ length: 1_200 }, () => ({ type: 'user.login', tenantId: 'interrupt', payload: {} }))));
    const replayed = async (): Promise<number> =>
      Number((await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = 'interrupt' AND replay_id IS NOT NULL`.execute(db)).rows[0]!.n);
    await waitFor('the events to be recorded', async () =>
      Number((await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.events WHERE tenant_id = 'interrupt'`.execute(db)).rows[0]!.n) === 1_200);
    // A page of 500 replayed runs takes two seconds, so the signal comes while a later page is still to go.
    await sql`CREATE FUNCTION public.slow_replayed_run() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.004); RETURN NEW; END $$`.execute(db);
    await sql`CREATE TRIGGER slow_replayed_run BEFORE INSERT ON walflow.workflow_runs FOR EACH ROW WHEN (NEW.tenant_id = 'interrupt' AND NEW.replay_id IS NOT NULL)
      EXECUTE FUNCTION public.slow_replayed_run()`.execute(db);
    let interrupted = '';
    try {
      const replay = spawnWalflow(['replay', '--from', '-1h', '--to', 'now', '--tenant', 'interrupt'], env);
      await waitFor('the first page', () => replay.output().includes('replayed 500/1200'));
      replay.kill('SIGINT');
      expect(await replay.exited).toBe(1);
      interrupted = replay.output();
      expect(interrupted).toContain('replay interrupted by SIGINT');
    } finally {
      await sql`DROP TRIGGER slow_replayed_run ON walflow.workflow_runs`.execute(db);
      await sql`DROP FUNCTION public.slow_replayed_run()`.execute(db);
    }
    const kept = await replayed();
    expect(kept % 500).toBe(0);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(1_200);
    const audited = await db.selectFrom('walflow.audit_log').select(['target', 'arguments']).where('action', '=', 'replay').where(sql<boolean>`arguments->>'tenant' = 'interrupt'`).execute();
    const range = { from: expect.stringMatching(/^\d{4}-.*\.\d{6}Z$/), to: expect.stringMatching(/^\d{4}-.*\.\d{6}Z$/) };
    expect(audited).toEqual([{ target: expect.stringMatching(/^replay-/), arguments: expect.objectContaining({ range, failed: expect.stringContaining('interrupted by SIGINT') }) }]);

    // The relative bounds typed again would now come to a later range; the command it gives goes on with the same one.
    const goOn = /to go on, run it again with (--from \S+ --to \S+ --replay-id \S+)/.exec(interrupted);
    expect(goOn).not.toBeNull();
    const resumed = await runWalflow(['replay', ...goOn![1]!.split(' '), '--tenant', 'interrupt'], env);
    expect(resumed.code, resumed.output).toBe(0);
    expect(await replayed()).toBe(1_200);
  });

  it('checks its times and options before it reads a workflow file or the database', async () => {
    const refused = async (args: string[], message: string) =>
      expect(await runWalflow(['replay', ...args], env), args.join(' ')).toMatchObject({ code: 2, output: expect.stringContaining(message) });
    await refused(['--from', 'yesterday', '--to', 'now', '--workflow-file', '/nonexistent.json', '--dry-run'], `option '--from <time>' argument 'yesterday' is invalid`);
    await refused(['--from', '-1h', '--to', 'now', '--workflow-file', '/nonexistent.json'], 'a workflow file is evaluated only in a dry run');
    await refused(['--from', '-1h', '--to', '-2h', '--workflow-file', '/nonexistent.json', '--dry-run'], 'the range is empty');
    await refused(['--from', '-1h', '--to', 'now', '--replay-id', ''], `option '--replay-id <id>' argument '' is invalid`);
    await refused(['--from', '-1h', '--to', 'now', '--workflow-file', '/nonexistent.json', '--workflow', 'other', '--dry-run'], 'a workflow file is the one workflow a backtest runs: it takes no --workflow');
  });
});

describe('walflow events tail', () => {
  it('prints events as they are recorded and stops on SIGTERM', async () => {
    const tail = spawnWalflow(['events', 'tail', '--tenant', 'tail', '--type', 'policy.*', '--interval', '100', '--json'], env);
    try {
      await waitFor('the tail to start', () => tail.output().includes('following new events'));
      const ids = [await emit(walflow.db, { type: 'policy.approved', tenantId: 'tail', payload: {} }), await emit(walflow.db, { type: 'user.login', tenantId: 'tail', payload: {} })];
      await waitFor('the tailed event', () => tail.output().includes(ids[0]!));
      expect(JSON.parse(tail.stdout().trim().split('\n')[0]!)).toMatchObject({ id: ids[0], event_type: 'policy.approved', tenant_id: 'tail' });
      expect(tail.output()).not.toContain(ids[1]);
    } finally {
      tail.kill('SIGTERM');
    }
    expect(await tail.exited).toBe(0);
  });

  it('starts now while another command holds a transaction open: what was recorded before it is not shown', async () => {
    const { db } = walflow;
    const definition = { tenant: 'tail-early', name: 'held', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event', event: 'x.y' }] };
    const { workflow } = await applyWorkflow(db, definition);
    const directory = await mkdtemp(join(tmpdir(), 'walflow-tail-'));
    const changed = join(directory, 'held.json');
    await writeFile(changed, JSON.stringify({ ...definition, cooldown: { seconds: 60 } }));
    // An event for the backtest to decide, before anything else.
    const first = await emit(db, { type: 'user.login', tenantId: 'tail-early', payload: {} });
    await waitFor('the first event', () => db.selectFrom('walflow.events').select('id').where('id', '=', first).executeTakeFirst());
    // A backtest of a change to the workflow waits for its cooldown row, inside the dry run's transaction, until
    // released. The test holds the row from a session of its own: walflow's would make the tail start early by itself.
    const holder = createDatabase(database.url, logger, { max: 1, applicationName: 'walflow-test' });
    let release!: () => void;
    let held!: () => void;
    const isHeld = new Promise<void>((resolve) => (held = resolve));
    const holding = holder.transaction().execute(async (trx) => {
      await sql`INSERT INTO walflow.cooldowns (workflow_id, key, until) VALUES (${workflow.id}::uuid, 'replay:held-tail-dry-run:', '-infinity')`.execute(trx);
      held();
      await new Promise<void>((resolve) => (release = resolve));
      throw new Error('rolled back');
    }).catch(() => undefined);
    await isHeld;
    const backtest = spawnWalflow(['replay', '--from', '-1m', '--to', 'now', '--replay-id', 'held-tail', '--dry-run', '--workflow-file', changed], env);
    let tail: WalflowChild | undefined;
    try {
      await waitFor('the backtest to wait for the cooldown', async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO walflow.cooldowns%'`.execute(db);
        return rows[0]!.n === 1;
      });
      const before = await emit(db, { type: 'user.login', tenantId: 'tail-early', payload: {} });
      await waitFor('the earlier event', () => db.selectFrom('walflow.events').select('id').where('id', '=', before).executeTakeFirst());
      const following = spawnWalflow(['events', 'tail', '--tenant', 'tail-early', '--interval', '100', '--json'], env);
      tail = following;
      await waitFor('the tail to start', () => following.output().includes('following new events'));
      const after = await emit(db, { type: 'user.login', tenantId: 'tail-early', payload: {} });
      await waitFor('the later event', () => following.output().includes(after));
      expect(following.stdout()).not.toContain(before);
    } finally {
      release();
      await holding;
      await holder.destroy();
      tail?.kill('SIGTERM');
      await rm(directory, { recursive: true, force: true });
    }
    expect(await backtest.exited).toBe(0);
  });
});

describe('walflow events list', () => {
  it('lists recent events newest first, filtered by type prefix and tenant', async () => {
    const { db } = walflow;
    for (const type of ['policy.approved', 'policy.cancelled', 'user.login']) await emit(db, { type, tenantId: 'list', payload: {} });
    await waitFor('the events', async () => (await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'list').execute()).length === 3);
    const listed = await runWalflow(['events', 'list', '--since', '-10m', '--type', 'policy.*', '--tenant', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { event_type: string }[]).map((row) => row.event_type)).toEqual(['policy.cancelled', 'policy.approved']);
    // One committed half an hour ago (younger than what this file's prune removes): inside --since -1h, not -10m;
    // --limit keeps the newest.
    const old = { ...approvalEvent('list', 1), type: 'policy.archived', committedAt: new Date(Date.now() - 30 * 60_000).toISOString() };
    await new Dispatcher({ db, slotName: database.slotName, logger }).dispatch({ events: [old], parked: [], checkpoint: null });
    const types = async (...args: string[]) => (JSON.parse((await runWalflow(['events', 'list', '--tenant', 'list', '--json', ...args], env)).stdout) as { event_type: string }[]).map((row) => row.event_type);
    expect(await types('--since', '-10m')).toEqual(['user.login', 'policy.cancelled', 'policy.approved']);
    expect(await types('--since', '-1h')).toEqual(['user.login', 'policy.cancelled', 'policy.approved', 'policy.archived']);
    expect(await types('--since', '-1h', '--limit', '2')).toEqual(['user.login', 'policy.cancelled']);
    const bad = await runWalflow(['events', 'list', '--since', 'yesterday'], env);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain(`option '--since <time>' argument 'yesterday' is invalid. not a time`);
    expect(await runWalflow(['events', 'list', '--tenant', ''], env)).toMatchObject({ code: 2, output: expect.stringContaining(`option '--tenant <id>' argument '' is invalid`) });
    expect(await runWalflow(['workflows', 'pause', ''], env)).toMatchObject({ code: 2, output: expect.stringContaining(`command-argument value '' is invalid for argument 'name'`) });
    const ancient = await runWalflow(['events', 'list', '--since', '-5000000d'], env);
    expect(ancient.code).toBe(2);
    expect(ancient.output).toMatch(/not a time PostgreSQL can hold: "-5000000d"/);
    // Refused by name, with the exit code of invalid arguments, rather than a default taken silently.
    for (const args of [['events', 'list', '--limit', 'x'], ['audit', 'list', '--limit', 'abc'], ['events', 'tail', '--interval', 'abc']]) {
      const refused = await runWalflow(args, env);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.output).toMatch(/option '--(limit|interval) <(n|ms)>' argument '(x|abc)' is invalid\. expected a whole number/);
    }
  });
});

describe('walflow workflows apply', () => {
  it('checks every file before it applies any, and names the file that is wrong', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'walflow-apply-'));
    try {
      const write = async (name: string, document: unknown): Promise<string> => {
        const file = join(directory, name);
        await writeFile(file, JSON.stringify(document));
        return file;
      };
      const good = await write('good.json', { tenant: 'apply', name: 'good', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
      const shapeless = await write('shapeless.json', { tenant: 'apply', name: 'shapeless', trigger: { event: 'user.login' } });
      const forbidden = await write('forbidden.json', {
        tenant: 'apply',
        name: 'forbidden',
        trigger: { event: 'user.login' },
        actions: [{ type: 'update_field', table: 'public.accounts', key: { column: 'id', value: '1' }, column: 'balance', value: 0 }],
      });
      // Valid in shape, but text the database cannot store: refused by the database, after good.json was written.
      const unstorable = await write('unstorable.json', { tenant: 'apply', name: 'unstorable', trigger: { event: 'user.login' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 't\u0000' }] });
      for (const bad of [shapeless, forbidden, unstorable]) {
        const refused = await runWalflow(['workflows', 'apply', good, bad], env);
        expect(refused.code).toBe(1);
        expect(refused.output).toContain(`walflow: ${bad}: `);
      }
      // A copy whose name was not changed: it would replace the first, which would be gone without a word.
      const copy = await write('copy.json', { tenant: 'apply', name: 'good', trigger: { event: 'user.logout' }, actions: [{ type: 'emit_event', event: 'x.z' }] });
      expect(await runWalflow(['workflows', 'apply', good, copy], env)).toMatchObject({ code: 1, output: expect.stringContaining(`${copy} and ${good} are both workflow apply/good: apply one`) });
      expect(await walflow.db.selectFrom('walflow.workflows').select('name').where('tenant_id', '=', 'apply').execute()).toEqual([]);
      // A schema a newer walflow migrated: this version's apply would lock differently than its dispatches.
      await sql`INSERT INTO walflow.schema_migrations (version, name, checksum) VALUES (9999, '9999_from_a_newer_walflow.sql', 'x')`.execute(walflow.db);
      try {
        expect(await runWalflow(['workflows', 'apply', good], env)).toMatchObject({ code: 1, output: expect.stringContaining('a newer walflow migrated it') });
      } finally {
        await sql`DELETE FROM walflow.schema_migrations WHERE version = 9999`.execute(walflow.db);
      }
      expect((await runWalflow(['workflows', 'apply', good], env)).output).toContain(`created apply/good (version 1) from ${good}`);
      // Audited once: applying the same document again changes nothing and records nothing.
      expect((await runWalflow(['workflows', 'apply', good], env)).output).toContain(`unchanged apply/good (version 1) from ${good}`);
      const applies = await walflow.db.selectFrom('walflow.audit_log').select('action').where('target', '=', 'apply/good').execute();
      expect(applies).toEqual([{ action: 'workflow.created' }]);
      // Listed for its tenant alone with --tenant; other tenants' workflows (this file's explain test made one) are left out.
      const listed = JSON.parse((await runWalflow(['workflows', 'list', '--tenant', 'apply', '--json'], env)).stdout) as { tenantId: string; name: string }[];
      expect(listed.map((workflow) => `${workflow.tenantId}/${workflow.name}`)).toEqual(['apply/good']);

      // With a catalog, what it does not list is warned of: a trigger that would never fire, events that would be parked.
      const catalogModule = fileURLToPath(new URL('../../../examples/crm/dist/catalog.js', import.meta.url));
      const typo = await write('typo.json', { tenant: 'apply', name: 'typo', trigger: { event: 'policy.aproved' }, actions: [{ type: 'emit_event', event: 'policy.noted' }] });
      const warned = await runWalflow(['workflows', 'apply', typo], { ...env, WALFLOW_CATALOG: catalogModule });
      expect(warned.code).toBe(0);
      expect(warned.output).toContain(`walflow: warning: ${typo}: typo is triggered by policy.aproved, which the catalog (WALFLOW_CATALOG) does not list: it will never fire`);
      expect(warned.output).toContain(`walflow: warning: ${typo}: typo emits policy.noted, which the catalog (WALFLOW_CATALOG) does not list`);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('walflow dead-runs', () => {
  it('lists dead runs, retries one with a fresh attempt, discards one, refuses an id that is no uuid, goes on past a refused row, and audits', async () => {
    const { db } = walflow;
    // No webhook signing secret is configured here: the action fails every attempt.
    await applyWorkflow(db, { tenant: 'dead-runs', name: 'doomed', trigger: { event: 'doomed.happened' }, actions: [{ type: 'webhook', url: 'https://hooks.example.com/x' }], retry: { maxAttempts: 1 } });
    const events = [await emit(db, { type: 'doomed.happened', tenantId: 'dead-runs', payload: {} }), await emit(db, { type: 'doomed.happened', tenantId: 'dead-runs', payload: {} })];
    const deadRuns = () => db.selectFrom('walflow.workflow_runs').select(['id', 'event_id', 'status', 'attempts']).where('tenant_id', '=', 'dead-runs').orderBy('event_id').execute();
    await waitFor('both runs to die', async () => (await deadRuns()).filter((run) => run.status === 'dead').length === 2);
    const [first, second] = (await deadRuns()).sort((a, b) => events.indexOf(a.event_id) - events.indexOf(b.event_id));

    const listed = JSON.parse((await runWalflow(['dead-runs', 'list', '--json'], env)).stdout) as { id: string; workflow: string; lastError: string }[];
    expect(listed.filter((run) => run.workflow === 'doomed').map((run) => run.id).sort()).toEqual([first!.id, second!.id].sort());
    expect((await runWalflow(['dead-runs', 'list'], env)).stdout).toContain(`${first!.id}  `);
    expect(JSON.parse((await runWalflow(['dead-runs', 'list', '--limit', '1', '--json'], env)).stdout)).toHaveLength(1);

    expect(await runWalflow(['dead-runs', 'discard', second!.id, 'not-an-id'], env)).toMatchObject({ code: 2, output: expect.stringContaining('not a run id (a uuid): not-an-id') });
    // An id given twice, in either case, is retried once.
    expect(await runWalflow(['dead-runs', 'retry', first!.id.toUpperCase(), first!.id], env)).toMatchObject({ code: 0, stdout: `retried ${first!.id}\n` });
    await waitFor('the retried run to die again, after its fresh attempt', async () => (await deadRuns()).some((run) => run.id === first!.id && run.status === 'dead' && run.attempts === 2));
    expect(await runWalflow(['dead-runs', 'discard', second!.id], env)).toMatchObject({ code: 0, stdout: `discarded ${second!.id}\n` });
    expect((await runWalflow(['dead-runs', 'discard', second!.id], env)).output).toContain(`no dead run ${second!.id}`);
    expect((await deadRuns()).find((run) => run.id === second!.id)?.status).toBe('cancelled');
    // A row refused does not stop the rows after it.
    const mixed = await runWalflow(['dead-runs', 'retry', second!.id, first!.id], env);
    expect(mixed).toMatchObject({ code: 1, stdout: `retried ${first!.id}\n` });
    expect(mixed.output).toContain(`no dead run ${second!.id}`);
    const audited = await db.selectFrom('walflow.audit_log').select(['action', 'target']).where('target', 'in', [first!.id, second!.id]).orderBy('id').execute();
    expect(audited).toEqual([
      { action: 'run.retry', target: first!.id },
      { action: 'run.discard', target: second!.id },
      { action: 'run.retry', target: first!.id },
    ]);
  });
});

describe('walflow prune --older-than', () => {
  it('takes an age, and refuses anything else saying what an age is', async () => {
    for (const [wrong, why] of [
      ['30', 'expected an age: a whole number and a unit (30d, 12h, 45m, 2w)'],
      ['-30d', 'expected an age: a whole number and a unit'],
      ['30 days', 'expected an age: a whole number and a unit'],
      ['0d', 'expected an age above zero'],
      ['99999999999w', 'expected an age of at most 36500d'],
    ]) {
      expect(await runWalflow(['prune', '--older-than', wrong!, '--dry-run'], env)).toMatchObject({
        code: 2,
        output: expect.stringContaining(`option '--older-than <age>' argument '${wrong}' is invalid. ${why}`),
      });
    }
    expect(await runWalflow(['prune', '--older-than', '30d', '--dry-run'], env)).toMatchObject({ code: 0, output: expect.stringContaining('would remove what is older than') });
  });
});

describe('walflow prune without --older-than', () => {
  it('keeps what the processes keep when their window is longer than this shell’s', async () => {
    const { db } = walflow;
    const days = (json: string) => Math.round((Date.now() - Date.parse((JSON.parse(json) as { olderThan: string }).olderThan)) / 86_400_000);
    expect(days((await runWalflow(['prune', '--dry-run', '--json'], env)).stdout)).toBe(30);
    // The processes prune daily by 90 days; this shell has no WALFLOW_RETENTION_DAYS (30).
    // Dated ahead, so that the running walflow's own daily prune, should it come meanwhile, is not the latest.
    await sql`INSERT INTO walflow.audit_log (at, actor, action, arguments) VALUES (now() + interval '1 day', 'walflow retention', 'prune', '{"retentionDays": 90}')`.execute(db);
    try {
      const longer = await runWalflow(['prune', '--dry-run', '--json'], env);
      expect(days(longer.stdout)).toBe(90);
      expect(longer.output).toContain("pruning by the processes' retention of 90 days");
      expect(days((await runWalflow(['prune', '--dry-run', '--json'], { ...env, WALFLOW_RETENTION_DAYS: '120' })).stdout)).toBe(120);
    } finally {
      await sql`DELETE FROM walflow.audit_log WHERE actor = 'walflow retention' AND arguments->>'retentionDays' = '90'`.execute(db);
    }
  });
});

describe('walflow dead-letters list', () => {
  it('shows at most --limit, and says so when there are more; walflow status counts the open ones', async () => {
    const { db } = walflow;
    for (let n = 0; n < 3; n++) await sql`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('letters', 'policy.approved', '[1]')`.execute(db);
    await waitFor('three dead letters', async () => (await db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', 'letters').execute()).length === 3);
    const limited = await runWalflow(['dead-letters', 'list', '--tenant', 'letters', '--limit', '2'], env);
    expect(limited.code).toBe(0);
    expect(limited.stdout.match(/payload_invalid {2}open/g)).toHaveLength(2);
    expect(limited.stdout).toContain('showing 2 of 3 dead letters (--limit)');
    const json = await runWalflow(['dead-letters', 'list', '--tenant', 'letters', '--limit', '2', '--json'], env);
    expect(JSON.parse(json.stdout)).toHaveLength(2);
    expect(json.output).toContain('showing 2 of 3 dead letters (--limit)');
    expect((await runWalflow(['dead-letters', 'list', '--tenant', 'letters', '--limit', '3'], env)).stdout).not.toContain('showing');
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM walflow.dead_letters WHERE resolved_at IS NULL`.execute(db);
    expect((await runWalflow(['status'], env)).stdout).toMatch(new RegExp(`^dead letters: ${rows[0]!.n} open$`, 'm'));
    // A discarded one is left out of the list, and shown with its resolution with --all.
    const [discarded] = JSON.parse(json.stdout) as { id: string }[];
    expect((await runWalflow(['dead-letters', 'discard', discarded!.id], env)).code).toBe(0);
    const open = JSON.parse((await runWalflow(['dead-letters', 'list', '--tenant', 'letters', '--json'], env)).stdout) as { id: string }[];
    expect(open.map((letter) => letter.id)).not.toContain(discarded!.id);
    expect(open).toHaveLength(2);
    const all = JSON.parse((await runWalflow(['dead-letters', 'list', '--tenant', 'letters', '--all', '--json'], env)).stdout) as { id: string; resolution: string | null }[];
    expect(all).toHaveLength(3);
    expect(all.find((letter) => letter.id === discarded!.id)?.resolution).toBe('discarded');
  });
});

describe('operator commands', () => {
  it('retries and discards dead letters, pauses, resumes and deletes workflows, and audits every action', async () => {
    const { db } = walflow;
    // An event the dispatcher cannot record until an operator fixes the cause (here: a trigger).
    await sql`CREATE FUNCTION public.block_events() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.payload->>'block' = 'yes' THEN RAISE EXCEPTION 'blocked for the test'; END IF; RETURN NEW; END $$`.execute(db);
    await retryOnDeadlock(() => sql`CREATE TRIGGER block_events BEFORE INSERT ON walflow.events FOR EACH ROW EXECUTE FUNCTION public.block_events()`.execute(db));
    const blocked = await emit(db, { type: 'policy.approved', tenantId: 'ops', payload: { block: 'yes' } });
    const [unfixable] = (await sql<{ id: string }>`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('ops', 'policy.approved', '[1]') RETURNING id`.execute(db)).rows;
    await waitFor('two dead letters', async () => (await db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', 'ops').execute()).length === 2);
    const listed = JSON.parse((await runWalflow(['dead-letters', 'list', '--tenant', 'ops', '--json'], env)).stdout) as { id: string; outboxId: string; code: string }[];
    expect(listed.map((letter) => [letter.outboxId, letter.code]).sort()).toEqual([[blocked, 'dispatch_failed'], [unfixable!.id, 'payload_invalid']].sort());

    await retryOnDeadlock(() => sql`DROP TRIGGER block_events ON walflow.events`.execute(db));
    const blockedLetter = listed.find((letter) => letter.outboxId === blocked)!;
    const unfixableLetter = listed.find((letter) => letter.outboxId === unfixable!.id)!;
    expect(await runWalflow(['dead-letters', 'retry', blockedLetter.id], env)).toMatchObject({ code: 0, output: expect.stringContaining(`as outbox row ${blocked}`) });
    await waitFor('the retried event to be recorded', () => db.selectFrom('walflow.events').select('id').where('id', '=', blocked).executeTakeFirst());
    // Retrying what cannot work parks it again, as an open letter of its own, rather than losing it.
    expect((await runWalflow(['dead-letters', 'retry', unfixableLetter.id], env)).code).toBe(0);
    const parkedAgain = await waitFor('the row to be parked again', () =>
      db.selectFrom('walflow.dead_letters').select('id').where('outbox_id', '=', unfixable!.id).where('resolved_at', 'is', null).executeTakeFirst(),
    );
    // An id that is no uuid is refused before any letter is touched (exit 2), the good id before it too.
    expect(await runWalflow(['dead-letters', 'discard', parkedAgain.id, 'not-an-id'], env)).toMatchObject({ code: 2, output: expect.stringContaining('not a dead letter id (a uuid): not-an-id') });
    expect((await runWalflow(['dead-letters', 'discard', parkedAgain.id], env)).code).toBe(0);
    expect((await runWalflow(['dead-letters', 'discard', parkedAgain.id], env)).output).toMatch(/already discarded/);
    expect((await runWalflow(['dead-letters', 'discard', unfixableLetter.id], env)).output).toMatch(/already retried/);
    expect((await runWalflow(['dead-letters', 'list', '--tenant', 'ops'], env)).output).toMatch(/no dead letters/);

    await applyWorkflow(db, { tenant: 'ops', name: 'notify', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    expect((await runWalflow(['workflows', 'pause', 'notify', '--tenant', 'ops'], env)).output).toMatch(/paused ops\/notify/);
    const whilePaused = await emit(db, { type: 'user.login', tenantId: 'ops', payload: {} });
    await waitFor('an inactive decision', () => db.selectFrom('walflow.decisions').select('outcome').where('event_id', '=', whilePaused).where('outcome', '=', 'inactive').executeTakeFirst());
    expect((await runWalflow(['workflows', 'resume', 'notify', '--tenant', 'ops'], env)).output).toMatch(/resumed ops\/notify/);
    expect(await runWalflow(['workflows', 'resume', 'notify', '--tenant', 'ops'], env)).toMatchObject({ code: 0, output: expect.stringContaining('ops/notify is already active: nothing changed') });
    expect((await runWalflow(['workflows', 'delete', 'notify', '--tenant', 'ops'], env)).output).toMatch(/deleted ops\/notify/);
    expect((await runWalflow(['workflows', 'delete', 'notify', '--tenant', 'ops'], env)).code).toBe(1);

    expect((await runWalflow(['workflows', 'pause', 'nobody', '--tenant', 'ops'], { ...env, WALFLOW_OPERATOR: 'ada@ops' })).code).toBe(1);
    await applyWorkflow(db, { tenant: 'ops', name: 'switched-off', status: 'disabled', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    for (const verb of ['resume', 'pause']) {
      const refused = await runWalflow(['workflows', verb, 'switched-off', '--tenant', 'ops'], env);
      expect(refused.code, verb).toBe(1);
      expect(refused.output).toMatch(/ops\/switched-off is disabled by its document/);
    }
    expect((await db.selectFrom('walflow.workflows').select('status').where('name', '=', 'switched-off').executeTakeFirstOrThrow()).status).toBe('disabled');
    await applyWorkflow(db, { tenant: 'ops', name: 'named', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    expect((await runWalflow(['workflows', 'pause', 'named', '--tenant', 'ops'], { ...env, WALFLOW_OPERATOR: 'ada@ops' })).code).toBe(0);
    const audit = JSON.parse((await runWalflow(['audit', 'list', '--json'], env)).stdout) as { action: string; target: string; actor: string }[];
    expect(audit.find((entry) => entry.target === 'ops/named')).toMatchObject({ actor: 'ada@ops', action: 'workflow.pause' });
    expect(audit.map((entry) => entry.action)).toEqual(
      expect.arrayContaining(['dead_letter.retry', 'dead_letter.discard', 'workflow.pause', 'workflow.resume', 'workflow.delete']),
    );
    // The second resume changed nothing and is not audited.
    expect(audit.filter((entry) => entry.target === 'ops/notify').map((entry) => entry.action)).toEqual(['workflow.delete', 'workflow.resume', 'workflow.pause']);
    expect(audit.every((entry) => entry.actor.includes('@'))).toBe(true);
    // Newest first, within --since, at most --limit.
    await sql`INSERT INTO walflow.audit_log (at, actor, action, target) VALUES (now() - interval '2 days', 'ops@old', 'workflow.pause', 'ops/long-ago')`.execute(db);
    const targets = async (...args: string[]) => (JSON.parse((await runWalflow(['audit', 'list', '--json', ...args], env)).stdout) as { target: string }[]).map((entry) => entry.target);
    expect(await targets('--since', '-1d')).not.toContain('ops/long-ago');
    expect(await targets('--since', '-3d')).toContain('ops/long-ago');
    expect(await targets('--limit', '1')).toEqual(['ops/named']);
  });
});

/**
 * DDL on the partitioned walflow.events locks each partition in turn, and walflow (still running here) can hold
 * one meanwhile: PostgreSQL then picks a deadlock victim, which may be the test's statement. Try it again.
 */
async function retryOnDeadlock(work: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await work();
      return;
    } catch (error) {
      if (sqlStateOf(error) !== SqlState.deadlockDetected || attempt === 5) throw error;
    }
  }
}

describe('commands that change walflow’s state, against a schema of another version', () => {
  it('refuse to run before they touch anything, saying why', async () => {
    const { db } = walflow;
    await sql`INSERT INTO walflow.schema_migrations (version, name, checksum) VALUES (9999, '9999_from_the_future.sql', 'x')`.execute(db);
    try {
      for (const args of [
        ['repair'],
        ['replay', '--from', '-1h', '--to', 'now'],
        ['prune', '--dry-run'],
        ['dead-runs', 'retry', '00000000-0000-7000-8000-000000000000'],
        ['dead-letters', 'discard', '00000000-0000-7000-8000-000000000000'],
        ['workflows', 'pause', 'none'],
      ]) {
        const refused = await runWalflow(args, env);
        expect(refused, args.join(' ')).toMatchObject({ code: 1, output: expect.stringContaining('a newer walflow migrated it') });
      }
    } finally {
      await sql`DELETE FROM walflow.schema_migrations WHERE version = 9999`.execute(db);
    }
  });
});

describe('walflow status', () => {
  it('takes the report of the process on its port only when that process reads its slot', async () => {
    const port = String(walflow.httpPort);
    const own = await runWalflow(['status'], { ...env, WALFLOW_HTTP_PORT: port });
    expect(own.stdout).toContain('(from the running walflow process)');
    // Degraded at worst (this file leaves dead letters and dead runs behind): not down, so it exits 0.
    expect(own.code).toBe(0);
    // Another installation's settings on the same machine: that process's report is not theirs.
    const other = await runWalflow(['status'], { ...env, WALFLOW_HTTP_PORT: port, WALFLOW_SLOT: 'another_installation' });
    expect(other.stdout).toContain('computed from the database; no walflow process answered');
    expect(other.stdout).toContain('slot: missing');
    expect(other.stdout).toMatch(/^status: down/m);
    expect(other.code).toBe(1);
  });

  it('ends, saying the status is unknown, when a lock held on walflow’s tables keeps the database from answering', async () => {
    const lock = await holdOpen(walflow.db, sql`LOCK TABLE walflow.dead_letters IN ACCESS EXCLUSIVE MODE`);
    try {
      const status = await runWalflow(['status'], env);
      expect(status).toMatchObject({ code: 1, output: expect.stringContaining('the database did not answer within 10 s') });
    } finally {
      await lock.release();
    }
  });
});

describe('walflow prune', () => {
  // Last in this file: replays of ranges before its cutoff are refused from here on.
  it('changes nothing with --dry-run, and removes what it counted and audits the cutoff without it', async () => {
    const { db } = walflow;
    const old = { ...approvalEvent('pruned-by-cli', 1), committedAt: new Date(Date.now() - 2 * 3_600_000).toISOString() };
    await new Dispatcher({ db, slotName: database.slotName, logger }).dispatch({ events: [old], parked: [], checkpoint: null });
    const left = async () => (await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'pruned-by-cli').execute()).length;
    const prunes = async () => (await db.selectFrom('walflow.audit_log').select('arguments').where('action', '=', 'prune').where('actor', '<>', RETENTION_ACTOR).execute()).map((entry) => entry.arguments);

    const dry = await runWalflow(['prune', '--older-than', '1h', '--dry-run', '--json'], env);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, events: 1 });
    expect([await left(), await prunes()]).toEqual([1, []]);

    const real = await runWalflow(['prune', '--older-than', '1h', '--json'], env);
    expect(real.code).toBe(0);
    const result = JSON.parse(real.stdout) as { olderThan: string; events: number };
    expect(result.events).toBe(1);
    expect(await left()).toBe(0);
    expect(await prunes()).toEqual([expect.objectContaining({ olderThan: result.olderThan, events: 1 })]);
  });
});
