import { isWalflowError, type EventCatalog, type WalflowDatabase } from '@walflow/core';
import { migrate, repairSlot, type MigrateOptions, type MigrateResult } from '@walflow/server';
import { waitFor } from '@walflow/testing/runtime';
import type { CleanupStack } from './cleanup-stack.js';
import { sql, type Kysely } from 'kysely';

/*
 * A replication slot nobody reads keeps all the WAL written after it, so a slot the demo left on the user's server
 * (WALFLOW_DEMO_DATABASE_URL) would fill its disk in time. The demo drops the slot when it ends if it created it,
 * and only then: a slot that was there before is someone's, who reads it. The walflow schema stays, and with it the
 * outbox, which `walflow migrate` will not give a new slot (events committed without a slot were never streamed); on
 * the next run the demo recreates the slot as an operator would, with walflow repair, which dispatches what the
 * outbox holds.
 */

export interface DemoSlot {
  migrated: MigrateResult;
  /** Whether this run created the slot (walflow migrate or repair): the demo drops it when it ends. */
  createdByTheDemo: boolean;
  /** The outbox rows walflow repair dispatched when it recreated the slot; null when it did not. */
  recoveredByRepair: number | null;
}

/**
 * walflow migrate, recreating first with walflow repair a slot that is gone from a database walflow was migrated on
 * with it — the demo dropped it when it last ran there. Any other missing slot fails as it does for walflow migrate.
 */
export async function migrateWithDemoSlot(options: MigrateOptions & { databaseUrl: string; catalog: EventCatalog }, cleanup: CleanupStack): Promise<DemoSlot> {
  // The drop is registered before the slot is made, so that a failure or a signal while migrating drops it too;
  // never one that was there before.
  if (!(await slotExists(options.db, options.slotName))) cleanup.defer(`replication slot ${options.slotName}`, () => dropDemoSlot(options.db, options.slotName));
  return migrateOrRepair(options);
}

async function migrateOrRepair(options: MigrateOptions & { databaseUrl: string; catalog: EventCatalog }): Promise<DemoSlot> {
  try {
    const migrated = await migrate(options);
    return { migrated, createdByTheDemo: migrated.slotCreated, recoveredByRepair: null };
  } catch (error) {
    if (!isWalflowError(error, 'slot_missing') || !(await wasMigratedWith(options.db, options.slotName))) throw error;
  }
  const repaired = await repairSlot(options);
  return { migrated: await migrate(options), createdByTheDemo: true, recoveredByRepair: repaired.recovered };
}

async function slotExists(db: Kysely<WalflowDatabase>, slotName: string): Promise<boolean> {
  const { rows } = await sql`SELECT FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(db);
  return rows.length > 0;
}

/**
 * Drops the slot once walflow's replication connection has let go of it: its walsender may outlive walflow's stop()
 * by a moment, and PostgreSQL refuses to drop an active slot.
 */
export async function dropDemoSlot(db: Kysely<WalflowDatabase>, slotName: string): Promise<void> {
  await waitFor(`replication slot ${slotName} to be released and dropped`, async () => {
    await sql`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(db);
    return true;
  });
}

async function wasMigratedWith(db: Kysely<WalflowDatabase>, slotName: string): Promise<boolean> {
  const state = await db.selectFrom('walflow.consumer_state').select('slot_name').where('slot_name', '=', slotName).executeTakeFirst();
  return state !== undefined;
}
