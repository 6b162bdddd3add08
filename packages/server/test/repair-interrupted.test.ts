import { verifyConsumer } from '@walflow/cdc';
import { emit } from '@walflow/outbox';
import { createDatabase, migrate, repairSlot } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openMigrated, silentLogger, waitForLockWait } from './fixtures.js';

const database = useTestDatabase();

describe('a repair that does not finish', () => {
  it('leaves no slot behind, so nothing streams past the rows it had yet to dispatch, and the next repair recovers them', async () => {
    const db = await openMigrated(database);
    try {
      await sql`SELECT pg_drop_replication_slot(${database.slotName})`.execute(db);
      // Committed while the slot was gone; the second one's recording fails as a server going away would.
      const missed = [];
      for (let n = 0; n < 4; n++) missed.push(await emit(db, { type: 'policy.approved', tenantId: 'repair-interrupted', payload: n === 1 ? { n, fault: 'transient' } : { n } }));
      await sql`
        CREATE FUNCTION public.fail_transiently() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.payload->>'fault' = 'transient' THEN RAISE EXCEPTION 'cannot record % now', NEW.id USING ERRCODE = '40001'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER fail_transiently BEFORE INSERT ON walflow.events FOR EACH ROW EXECUTE FUNCTION public.fail_transiently()`.execute(db);

      await expect(repairSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, pageSize: 1 })).rejects.toThrow(
        /cannot record[\s\S]*run walflow repair again|run walflow repair again[\s\S]*cannot record/,
      );
      // A consumer finds no slot and stays down, saying to repair, instead of streaming from the new slot's start.
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
      expect(rows[0]!.n).toBe(0);

      await sql`DROP TRIGGER fail_transiently ON walflow.events`.execute(db);
      expect(await repairSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, pageSize: 1 })).toMatchObject({ recovered: 3 });
      const recorded = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'repair-interrupted').execute();
      expect(recorded.map((row) => row.id).sort()).toEqual([...missed].sort());
    } finally {
      await db.destroy();
    }
  });

  it('is refused by the consumer when it died after making its slot (kill -9), until a repair finishes', async () => {
    const db = await openMigrated(database);
    try {
      await sql`SELECT pg_drop_replication_slot(${database.slotName})`.execute(db);
      const missed = [await emit(db, { type: 'policy.approved', tenantId: 'repair-killed', payload: {} }), await emit(db, { type: 'policy.approved', tenantId: 'repair-killed', payload: {} })];
      // The repair made its slot and waits to record the first row: the moment a kill would leave behind. (A lock
      // held in a transaction would hold up the slot's creation, which waits for running transactions.)
      const holder = createDatabase(database.url, silentLogger, { max: 1 });
      await sql`SELECT pg_advisory_lock(7231)`.execute(holder);
      await sql`
        CREATE FUNCTION public.wait_for_the_test() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(7231); RETURN NEW; END $$;
        CREATE TRIGGER wait_for_the_test BEFORE INSERT ON walflow.events FOR EACH ROW EXECUTE FUNCTION public.wait_for_the_test()`.execute(db);
      const repairing = repairSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, pageSize: 1 });
      await waitForLockWait(db, 'the repair to wait to record the first row', '%walflow.events%');
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
      expect(rows[0]!.n).toBe(1);
      await expect(verifyConsumer(db, database.slotName)).rejects.toMatchObject({
        code: 'slot_missing',
        message: expect.stringMatching(/^a walflow repair of slot \S+ started at \S+ and did not finish: its slot starts after outbox rows it had yet to dispatch; run `walflow repair` again$/),
      });

      await sql`SELECT pg_advisory_unlock(7231)`.execute(holder);
      await holder.destroy();
      expect(await repairing).toMatchObject({ recovered: 2 });
      await sql`DROP TRIGGER wait_for_the_test ON walflow.events`.execute(db);
      await expect(verifyConsumer(db, database.slotName)).resolves.toMatchObject({ confirmedFlush: expect.any(BigInt) });
      const recorded = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'repair-killed').execute();
      expect(recorded.map((row) => row.id).sort()).toEqual([...missed].sort());
    } finally {
      await db.destroy();
    }
  });

  it('marks a slot walflow has not known before, which has no state yet, so that a repair killed midway is refused too', async () => {
    const db = await openMigrated(database);
    const slotName = `${database.slotName}_renamed`;
    const holder = createDatabase(database.url, silentLogger, { max: 1 });
    try {
      await emit(db, { type: 'policy.approved', tenantId: 'repair-renamed', payload: {} });
      await sql`SELECT pg_advisory_lock(7232)`.execute(holder);
      await sql`
        CREATE FUNCTION public.hold_the_repair() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock_shared(7232); RETURN NEW; END $$;
        CREATE TRIGGER hold_the_repair BEFORE INSERT ON walflow.events FOR EACH ROW EXECUTE FUNCTION public.hold_the_repair()`.execute(db);
      const repairing = repairSlot({ db, databaseUrl: database.url, slotName, logger: silentLogger, pageSize: 1 });
      await waitForLockWait(db, 'the repair to wait to record the first row', '%walflow.events%');
      // As if killed here: `walflow migrate` now finds the new slot, and must not make it look whole.
      await migrate({ db, slotName, logger: silentLogger });
      await expect(verifyConsumer(db, slotName)).rejects.toMatchObject({ code: 'slot_missing', message: expect.stringMatching(/did not finish/) });
      await sql`SELECT pg_advisory_unlock(7232)`.execute(holder);
      await repairing;
      await expect(verifyConsumer(db, slotName)).resolves.toMatchObject({ confirmedFlush: expect.any(BigInt) });
    } finally {
      await sql`SELECT pg_advisory_unlock_all()`.execute(holder);
      await holder.destroy();
      await sql`DROP TRIGGER IF EXISTS hold_the_repair ON walflow.events`.execute(db);
      await sql`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(db);
      await db.destroy();
    }
  });
});
