import type { WalflowDatabase } from '@walflow/core';
import { emit } from '@walflow/outbox';
import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, openMigrated, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let walflow: RunningWalflow | undefined;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await walflow?.stop();
  await db.destroy();
});

/** The decisions of these events for the tenant's one workflow, in event order. */
async function decisions(ids: string[]) {
  return waitFor(`${ids.length} decisions`, async () => {
    const rows = await db.selectFrom('walflow.decisions').select(['event_id', 'outcome', 'detail']).where('event_id', 'in', ids).execute();
    return rows.length === ids.length && ids.map((id) => rows.find((row) => row.event_id === id)!);
  });
}

async function committedAt(id: string): Promise<string> {
  const { rows } = await sql<{ at: string }>`SELECT to_json(committed_at) #>> '{}' AS at FROM walflow.events WHERE id = ${id}`.execute(db);
  return rows[0]!.at;
}

describe('guards decided from a backlog', () => {
  it('count rate-limit windows in commit time: events committed in two windows, decided together later, fill one each', async () => {
    const tenant = 'windows';
    await applyTestWorkflow(db, { tenant, name: 'w', trigger: { event: 'order.placed' }, rateLimits: [{ limit: 1, periodSeconds: 5 }], actions: [{ type: 'emit_event', event: 'x.done' }] });
    const first = await emit(db, { type: 'order.placed', tenantId: tenant, payload: {} });
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    // One transaction: one commit time, so the same window, whatever the clock's second.
    const [second, third] = await db.transaction().execute(async (trx) => [
      await emit(trx, { type: 'order.placed', tenantId: tenant, payload: {} }),
      await emit(trx, { type: 'order.placed', tenantId: tenant, payload: {} }),
    ]);
    // walflow starts only now: by the clock all three would fall into one window, and two be rate limited.
    walflow = await startTestWalflow(database.url, database.slotName);
    const decided = await decisions([first, second, third]);
    expect(decided.map((decision) => decision.outcome)).toEqual(['fired', 'fired', 'rate_limited']);
    const windowStart = new Date(Math.floor(Date.parse(await committedAt(second)) / 5_000) * 5_000).toISOString();
    expect(decided[2]!.detail).toMatchObject({ limit: 1, periodSeconds: 5, windowStart });
    await walflow.stop();
    walflow = undefined;
  });

  it('let a bypassing event through a cooldown, which then restarts from it', async () => {
    const tenant = 'bypass';
    await applyTestWorkflow(db, {
      tenant,
      name: 'w',
      trigger: { event: 'claim.filed' },
      cooldown: { seconds: 3600, key: 'event.aggregateId' },
      bypass: "has(event.metadata.priority) && event.metadata.priority == 'critical'",
      actions: [{ type: 'emit_event', event: 'x.done' }],
    });
    const claim = (priority: string) => emit(db, { type: 'claim.filed', tenantId: tenant, aggregateType: 'claim', aggregateId: 'c1', payload: {}, metadata: { priority } });
    const ids = [await claim('normal'), await claim('normal'), await claim('critical'), await claim('normal')];
    walflow = await startTestWalflow(database.url, database.slotName);
    const decided = await decisions(ids);
    expect(decided.map((decision) => decision.outcome)).toEqual(['fired', 'cooldown', 'fired', 'cooldown']);
    expect(decided[2]!.detail).toMatchObject({ bypassed: true });
    // To the microsecond: the cooldown runs from the bypassing event's commit, not from the first event's.
    const { rows } = await sql<{ until: string }>`
      SELECT to_char((committed_at + interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS until FROM walflow.events WHERE id = ${ids[2]!}`.execute(db);
    expect(decided[3]!.detail).toMatchObject({ until: rows[0]!.until });
    await walflow.stop();
    walflow = undefined;
  });
});
