import { randomUUID } from 'node:crypto';
import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { prune } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openMigrated, silentLogger } from './fixtures.js';

/** Where prune stops: the day the cutoff falls in, and dead letters that are still open. */
const database = useTestDatabase();
const DAY = 86_400_000;
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(() => db.destroy());

describe('a prune whose cutoff falls within a day', () => {
  it("keeps that day's partition, deleting only the day's rows before the cutoff", async () => {
    await sql`SELECT walflow.ensure_event_partitions()`.execute(db);
    const today = new Date(Math.floor(Date.now() / DAY) * DAY);
    const partition = `events_${today.toISOString().slice(0, 10).replaceAll('-', '')}`;
    const at = (hours: number) => ({ ...approvalEvent('boundary', hours), committedAt: new Date(today.getTime() + hours * 3_600_000).toISOString() });
    const [early, late] = [at(1), at(13)];
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [early, late], parked: [], checkpoint: null });

    const pruned = await prune(db, { olderThan: new Date(today.getTime() + 12 * 3_600_000) });
    expect(pruned.droppedPartitions).not.toContain(partition);
    expect(pruned.events).toBe(1);
    const left = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'boundary').execute();
    expect(left.map((row) => row.id)).toEqual([late.id]);
  });
});

describe('a prune of dead letters', () => {
  it('removes resolved letters older than the window only: an open one is the only copy of its event', async () => {
    const letter = async (daysOld: number, resolved: boolean): Promise<string> => {
      const { id } = await db
        .insertInto('walflow.dead_letters')
        .values({
          outbox_id: randomUUID(),
          tenant_id: 'letters',
          code: 'unknown_event_type',
          reason: 'test',
          raw: JSON.stringify({}),
          created_at: sql`now() - ${daysOld} * interval '1 day'`,
          resolved_at: resolved ? sql`now()` : null,
          resolution: resolved ? 'discarded' : null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return id;
    };
    const oldOpen = await letter(45, false);
    const oldResolved = await letter(45, true);
    const newOpen = await letter(1, false);
    const newResolved = await letter(1, true);
    const cutoff = new Date(Date.now() - 30 * DAY);
    expect(await prune(db, { olderThan: cutoff, dryRun: true })).toMatchObject({ deadLetters: 1 });
    expect(await prune(db, { olderThan: cutoff })).toMatchObject({ deadLetters: 1 });
    const left = await db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', 'letters').execute();
    expect(left.map((row) => row.id).sort()).toEqual([oldOpen, newOpen, newResolved].sort());
    expect(left.map((row) => row.id)).not.toContain(oldResolved);
  });
});
