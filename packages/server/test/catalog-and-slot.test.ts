import { fileURLToPath } from 'node:url';
import { verifyConsumer } from '@walflow/cdc';
import { emit } from '@walflow/outbox';
import { createDatabase, migrate, repairSlot, startWalflow, type RunningWalflow } from '@walflow/server';
import { createTestDatabase, useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, countsFor, keptWarnings, silentLogger, startTestWalflow, testConfig } from './fixtures.js';

const database = useTestDatabase();
const catalogModule = fileURLToPath(new URL('./fixtures/catalog.ts', import.meta.url));
let walflow: RunningWalflow | undefined;

afterAll(async () => {
  await walflow?.stop();
});

describe('WALFLOW_CATALOG', () => {
  it('parks unknown types and invalid payloads with the reason (one whose schema throws too), and records the valid events', async () => {
    walflow = await startTestWalflow(database.url, database.slotName, { catalogModule });
    const { db } = walflow;
    const [unknown, invalid, throwing, valid] = await db.transaction().execute(async (trx) => [
      await emit(trx, { type: 'policy.rejected', tenantId: 'catalog', payload: { policyId: 'p1' } }),
      await emit(trx, { type: 'policy.approved', tenantId: 'catalog', payload: { policyId: 'p2', premium: -1 } }),
      await emit(trx, { type: 'site.registered', tenantId: 'catalog', payload: { url: 'not a url' } }),
      await emit(trx, { type: 'policy.approved', tenantId: 'catalog', payload: { policyId: 'p3', premium: 100 } }),
    ]);
    await waitFor('the valid event', async () => (await countsFor(db, 'catalog')).events === 1);
    const letters = await db.selectFrom('walflow.dead_letters').select(['outbox_id', 'code', 'reason']).where('tenant_id', '=', 'catalog').orderBy('code').orderBy('reason').execute();
    expect(letters).toEqual([
      { outbox_id: unknown, code: 'event_unknown', reason: 'unknown event type policy.rejected' },
      { outbox_id: invalid, code: 'payload_invalid', reason: expect.stringMatching(/premium/) },
      { outbox_id: throwing, code: 'payload_invalid', reason: 'payload of site.registered is invalid: its schema threw Invalid URL' },
    ]);
    expect(await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'catalog').execute()).toEqual([{ id: valid }]);
    expect((await countsFor(db, 'catalog')).outbox).toBe(0);
    await walflow.stop();
    walflow = undefined;
  });
});

describe('WALFLOW_CATALOG and the events runs emit', () => {
  it("records the events a run emits about itself whatever the catalog lists, and warns at start of a workflow's emit_event it lacks", async () => {
    const db = createDatabase(database.url, silentLogger);
    try {
      await migrate({ db, slotName: database.slotName, logger: silentLogger });
      await sql`CREATE TABLE public.counters (sku text PRIMARY KEY, count integer NOT NULL DEFAULT 0)`.execute(db);
      const tenant = 'catalog-runs';
      await applyTestWorkflow(db, { tenant, name: 'announce', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'agent.policy_counted' }] });
      await applyTestWorkflow(
        db,
        {
          tenant,
          name: 'count',
          trigger: { event: 'policy.approved' },
          // No such row: the one attempt fails, the run is dead, and the workflow pauses itself.
          actions: [{ type: 'update_field', table: 'public.counters', key: { column: 'sku', value: 'missing' }, column: 'count', increment: 1 }],
          retry: { maxAttempts: 1 },
          autoPause: { afterConsecutiveFailures: 1 },
        },
        { updateFields: ['public.counters.count'] },
      );
    } finally {
      await db.destroy();
    }
    const warnings: { msg: string; eventType?: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line) as (typeof warnings)[number]) });
    walflow = await startTestWalflow(database.url, database.slotName, { catalogModule, updateFields: ['public.counters.count'] }, logger);
    expect(warnings.filter((warning) => warning.eventType !== undefined)).toEqual([
      expect.objectContaining({ eventType: 'agent.policy_counted', msg: expect.stringContaining('parked as event_unknown') }),
    ]);
    const { db: walflowDb } = walflow;
    await emit(walflowDb, { type: 'policy.approved', tenantId: 'catalog-runs', payload: { policyId: 'p1', premium: 10 } });
    const paused = await waitFor('the workflow.auto_paused event to be recorded', () =>
      walflowDb.selectFrom('walflow.events').select(['event_type', 'payload']).where('tenant_id', '=', 'catalog-runs').where('event_type', '=', 'workflow.auto_paused').executeTakeFirst(),
    );
    expect(paused.payload).toMatchObject({ name: 'count', consecutiveFailures: 1 });
    const letters = await waitFor('the emitted event to be parked', async () => {
      const rows = await walflowDb.selectFrom('walflow.dead_letters').select(['event_type', 'code']).where('tenant_id', '=', 'catalog-runs').execute();
      return rows.length > 0 && rows;
    });
    expect(letters).toEqual([{ event_type: 'agent.policy_counted', code: 'event_unknown' }]);
    await walflow.stop();
    walflow = undefined;
  });
});

describe('a lost replication slot', () => {
  it('is reported, never recreated silently; walflow repair recovers every event committed meanwhile', async () => {
    const db = createDatabase(database.url, silentLogger);
    try {
      await migrate({ db, slotName: database.slotName, logger: silentLogger });
      await sql`SELECT pg_drop_replication_slot(${database.slotName})`.execute(db);

      await expect(migrate({ db, slotName: database.slotName, logger: silentLogger })).rejects.toMatchObject({
        code: 'slot_missing',
        message: expect.stringContaining('walflow repair'),
      });

      walflow = await startWalflow({ ...testConfig(database.url, database.slotName), downRecheckMs: 200 }, silentLogger);
      const status = await waitFor('the consumer to report the lost slot', () => walflow!.consumerStatus().state === 'down' && walflow!.consumerStatus());
      expect(status.reason).toMatch(/replication slot .* does not exist.*walflow repair/);
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
      expect(rows[0]?.n).toBe('0');

      // Committed while the slot was gone: only the outbox knows them.
      await applyTestWorkflow(db, { tenant: 'repair', name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.done' }] });
      const missed = [];
      for (let n = 0; n < 25; n++) missed.push(await emit(db, { type: 'policy.approved', tenantId: 'repair', payload: { n } }));
      // The process is down; repair needs the leader lock, which a down consumer does not hold for long.
      const result = await waitFor('repair to get the leader lock', () =>
        repairSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, pageSize: 10 }).catch((error: unknown) => {
          if ((error as { code?: string }).code === 'leader_busy') return undefined;
          throw error;
        }),
      );
      expect(result).toMatchObject({ droppedSlot: false, recovered: 25, parked: 0 });
      // The slot streams from its creation, before the backlog went through the dispatcher: what is written
      // meanwhile is younger than it, and not reported at the next start as never to be streamed.
      const { rows: order } = await sql<{ before: boolean }>`
        SELECT slot_created_at < repaired_at AS before FROM walflow.consumer_state WHERE slot_name = ${database.slotName}`.execute(db);
      expect(order).toEqual([{ before: true }]);
      const recovered = await db.selectFrom('walflow.events').select(['id', 'recovered']).where('tenant_id', '=', 'repair').where('event_type', '=', 'policy.approved').execute();
      expect(recovered.map((row) => row.id).sort()).toEqual([...missed].sort());
      expect(recovered.every((row) => row.recovered)).toBe(true);
      // In pages of 10: their place after the shared commit position is the outbox order, across pages.
      const inRunOrder = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'repair').orderBy('commit_lsn').orderBy('tx_position').execute();
      expect(inRunOrder.map((row) => row.id)).toEqual(missed);

      // The running process notices the repaired slot and streams again; nothing is recorded twice.
      await waitFor('streaming to resume', () => walflow!.consumerStatus().state === 'streaming');
      const after = await emit(db, { type: 'policy.approved', tenantId: 'repair', payload: { after: true } });
      await waitFor('every run, and the events they emit, to be recorded', async () => {
        const counts = await countsFor(db, 'repair');
        return counts.succeeded === 26 && counts.events === 52 && counts.outbox === 0;
      });
      expect(await countsFor(db, 'repair')).toMatchObject({ decisions: 26, runs: 26 });
      expect((await db.selectFrom('walflow.events').select('recovered').where('id', '=', after).executeTakeFirstOrThrow()).recovered).toBe(false);
    } finally {
      await db.destroy();
    }
  });
});

describe('outbox rows older than the slot', () => {
  it('are reported at start, saying to run walflow repair', async () => {
    await walflow?.stop();
    walflow = undefined;
    const db = createDatabase(database.url, silentLogger);
    try {
      await migrate({ db, slotName: database.slotName, logger: silentLogger });
      await emit(db, { type: 'policy.approved', tenantId: 'before-slot', payload: { policyId: 'p0', premium: 1 } });
      // As after a slot recreated by hand: its creation is recorded after the row was written, which it never streams.
      await db.updateTable('walflow.consumer_state').set({ slot_created_at: sql`now() + interval '1 second'` }).where('slot_name', '=', database.slotName).execute();
      const { logger, warnings } = keptWarnings();
      walflow = await startTestWalflow(database.url, database.slotName, {}, logger);
      await waitFor('the report', () => warnings.some((warning) => warning.includes('outbox rows older than the replication slot will never be streamed: run `walflow repair`')));
      await walflow.stop();
      walflow = undefined;
      await db.deleteFrom('walflow.outbox').where('tenant_id', '=', 'before-slot').execute();
    } finally {
      await db.destroy();
    }
  });
});

describe('a checkpoint that does not belong to this server', () => {
  it('refuses to consume, says why, and goes on once the state is right again', async () => {
    await walflow?.stop();
    walflow = undefined;
    const db = createDatabase(database.url, silentLogger);
    try {
      const original = await db.selectFrom('walflow.consumer_state').selectAll().where('slot_name', '=', database.slotName).executeTakeFirstOrThrow();
      const cases = [
        { set: { system_identifier: '1234' }, reason: /written by database system 1234/ },
        { set: { checkpoint_lsn: 'FFFFFF/0' }, reason: /beyond this server's WAL/ },
        { set: { timeline_id: original.timeline_id! + 1 }, reason: /moved from timeline/ },
      ];
      for (const { set, reason } of cases) {
        await db.updateTable('walflow.consumer_state').set(set).where('slot_name', '=', database.slotName).execute();
        walflow = await startWalflow({ ...testConfig(database.url, database.slotName), downRecheckMs: 100 }, silentLogger);
        const status = await waitFor('the consumer to refuse', () => walflow!.consumerStatus().state === 'down' && walflow!.consumerStatus());
        expect(status.reason).toMatch(reason);
        expect(status.reason).toMatch(/walflow repair/);
        // What orchestrators and the compose healthcheck read: the slot is there, only the consumer check says it.
        const health = await waitFor('/health to report the consumer down', async () => {
          const response = await fetch(`http://127.0.0.1:${walflow!.httpPort}/health`);
          const report = (await response.json()) as { status: string; checks: { name: string; state: string; message: string }[] };
          return response.status === 503 && report;
        });
        expect(health.checks.find((check) => check.name === 'consumer')).toMatchObject({ state: 'down', message: expect.stringMatching(reason) });
        expect((await fetch(`http://127.0.0.1:${walflow.httpPort}/readyz`)).status).toBe(503);
        await db
          .updateTable('walflow.consumer_state')
          .set({ system_identifier: original.system_identifier, checkpoint_lsn: original.checkpoint_lsn, timeline_id: original.timeline_id })
          .where('slot_name', '=', database.slotName)
          .execute();
        await waitFor('streaming to resume', () => walflow!.consumerStatus().state === 'streaming');
        await waitFor('/readyz to answer 200 again', async () => (await fetch(`http://127.0.0.1:${walflow!.httpPort}/readyz`)).status === 200);
        await walflow.stop();
        walflow = undefined;
      }
    } finally {
      await db.destroy();
    }
  });

  it('leaves one of two processes that were down streaming once the state is right, and the other its standby, not down', async () => {
    await walflow?.stop();
    walflow = undefined;
    const db = createDatabase(database.url, silentLogger);
    const processes: RunningWalflow[] = [];
    try {
      await migrate({ db, slotName: database.slotName, logger: silentLogger });
      const original = await db.selectFrom('walflow.consumer_state').selectAll().where('slot_name', '=', database.slotName).executeTakeFirstOrThrow();
      await db.updateTable('walflow.consumer_state').set({ checkpoint_lsn: 'FFFFFF/0' }).where('slot_name', '=', database.slotName).execute();
      const config = { ...testConfig(database.url, database.slotName), role: 'consumer' as const, downRecheckMs: 1000, standbyPollMs: 50 };
      for (let n = 0; n < 2; n++) processes.push(await startWalflow(config, silentLogger));
      await waitFor('both to be down', () => processes.every((running) => running.consumerStatus().state === 'down'));
      await db.updateTable('walflow.consumer_state').set({ checkpoint_lsn: original.checkpoint_lsn }).where('slot_name', '=', database.slotName).execute();
      await waitFor('one to stream and the other to stand by', () => {
        const states = processes.map((running) => running.consumerStatus().state).sort();
        return states[0] === 'standby' && states[1] === 'streaming';
      });
    } finally {
      await Promise.all(processes.map((running) => running.stop()));
      await db.destroy();
    }
  });
});

describe('a slot of the same name in another database', () => {
  it('is refused by migrate and repair, saying whose it is; repair leaves it alone', async () => {
    const slotName = `${database.slotName}_shared`;
    const [a, b] = [await createTestDatabase(database.adminUrl), await createTestDatabase(database.adminUrl)];
    const [first, second] = [createDatabase(a.url, silentLogger), createDatabase(b.url, silentLogger)];
    try {
      await migrate({ db: first, slotName, logger: silentLogger });
      const foreign = { code: 'config_invalid', message: `replication slot ${slotName} belongs to database ${a.name}, not ${b.name}: each database walflow serves needs a slot of its own (WALFLOW_SLOT)` };
      await expect(migrate({ db: second, slotName, logger: silentLogger })).rejects.toMatchObject(foreign);
      expect((await sql<{ outbox: string | null }>`SELECT to_regclass('walflow.outbox')::text AS outbox`.execute(second)).rows).toEqual([{ outbox: null }]);
      await expect(repairSlot({ db: second, databaseUrl: b.url, slotName, logger: silentLogger })).rejects.toMatchObject(foreign);
      // The consumer too: config_invalid keeps it down, checking again, rather than reconnecting hard.
      await expect(verifyConsumer(second, slotName)).rejects.toMatchObject(foreign);
      const { rows } = await sql<{ database: string }>`SELECT database FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(first);
      expect(rows).toEqual([{ database: a.name }]);
    } finally {
      await Promise.all([first.destroy(), second.destroy()]);
      await Promise.all([a.drop(), b.drop()]);
    }
  });
});
