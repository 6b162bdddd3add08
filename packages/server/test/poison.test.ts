import { emit } from '@walflow/outbox';
import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, countsFor, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
let walflow: RunningWalflow;

beforeAll(async () => {
  walflow = await startTestWalflow(database.url, database.slotName);
  const { db } = walflow;
  // Faults injected into the dispatcher's own transaction: one event always fails, another fails once.
  // A sequence survives the rollback of the transaction that advanced it: it remembers the first failure.
  await sql`CREATE SEQUENCE public.fail_once`.execute(db);
  await sql`CREATE FUNCTION public.inject_faults() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.payload->>'fault' = 'always' THEN RAISE EXCEPTION 'poison: % can never be recorded', NEW.id; END IF;
      IF NEW.payload->>'fault' = 'once' AND nextval('public.fail_once') = 1 THEN
        RAISE EXCEPTION 'one-off failure of %', NEW.id;
      END IF;
      RETURN NEW;
    END $$`.execute(db);
  await sql`CREATE TRIGGER inject_faults BEFORE INSERT ON walflow.events FOR EACH ROW EXECUTE FUNCTION public.inject_faults()`.execute(db);
});
afterAll(async () => {
  await walflow?.stop();
});

describe('poison events', () => {
  it('parks only the event that fails on its own, records the rest of its batch, and goes on', async () => {
    const { db } = walflow;
    const tenant = 'poison';
    await applyTestWorkflow(db, { tenant, name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.done' }] });
    const ids = await db.transaction().execute(async (trx) => {
      const written: string[] = [];
      for (let n = 0; n < 9; n++) written.push(await emit(trx, { type: 'policy.approved', tenantId: tenant, payload: n === 4 ? { n, fault: 'always' } : { n } }));
      return written;
    });
    const after = await emit(db, { type: 'policy.approved', tenantId: tenant, payload: { n: 9 } });
    // Done when every decision is made and the events the runs emit are recorded too.
    await waitFor('the stream to pass the poison', async () => {
      const counts = await countsFor(db, tenant);
      return counts.decisions === 9 && counts.succeeded === 9 && counts.outbox === 0;
    });
    const letters = await db.selectFrom('walflow.dead_letters').selectAll().where('tenant_id', '=', tenant).execute();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ outbox_id: ids[4], code: 'dispatch_failed', reason: expect.stringMatching(/can never be recorded/), raw: { id: ids[4], payload: { n: 4, fault: 'always' } } });
    const recorded = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', tenant).where('event_type', '=', 'policy.approved').execute();
    expect(recorded.map((row) => row.id).sort()).toEqual([...ids.filter((_, n) => n !== 4), after].sort());
  });

  it('parks nothing while the database refuses every batch (a column gone), and records it all once mended', async () => {
    const { db } = walflow;
    const tenant = 'refused';
    await applyTestWorkflow(db, { tenant, name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'n' }] });
    await sql`ALTER TABLE walflow.workflow_runs RENAME COLUMN decision_detail TO decision_detail_gone`.execute(db);
    try {
      for (let n = 0; n < 3; n++) await emit(db, { type: 'policy.approved', tenantId: tenant, payload: { n } });
      const status = await waitFor('the consumer to give the batch back', () => walflow.consumerStatus().state === 'reconnecting' && walflow.consumerStatus());
      expect(status.reason).toMatch(/decision_detail/);
      expect(await countsFor(db, tenant)).toMatchObject({ events: 0, outbox: 3, deadLetters: 0 });
    } finally {
      await sql`ALTER TABLE walflow.workflow_runs RENAME COLUMN decision_detail_gone TO decision_detail`.execute(db);
    }
    await waitFor('the events to be recorded once the column is back', async () => (await countsFor(db, tenant)).runs === 3);
    expect(await countsFor(db, tenant)).toMatchObject({ events: 3, outbox: 0, deadLetters: 0 });
  });

  it('retries a batch that failed once, parks nothing and leaves no partial batch', async () => {
    const { db } = walflow;
    const tenant = 'flaky';
    await db.transaction().execute(async (trx) => {
      for (let n = 0; n < 5; n++) await emit(trx, { type: 'policy.approved', tenantId: tenant, payload: n === 2 ? { n, fault: 'once' } : { n } });
    });
    await waitFor('the batch to be recorded', async () => (await countsFor(db, tenant)).events === 5);
    expect((await countsFor(db, tenant)).deadLetters).toBe(0);
    const { rows } = await sql<{ calls: string }>`SELECT last_value::text AS calls FROM public.fail_once`.execute(db);
    expect(Number(rows[0]?.calls)).toBeGreaterThanOrEqual(2); // it failed once, then passed
  });

});
