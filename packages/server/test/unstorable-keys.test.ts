import { emit } from '@walflow/outbox';
import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyTestWorkflow, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
let walflow: RunningWalflow;

beforeAll(async () => {
  walflow = await startTestWalflow(database.url, database.slotName);
});
afterAll(async () => {
  await walflow?.stop();
});

it('stores a guard key holding a NUL as a key of its own, and decides the event for every workflow', async () => {
  const { db } = walflow;
  const tenant = 'nul-keys';
  const action = [{ type: 'emit_event' as const, event: 'key.noted' }];
  // A NUL as a separator of a composite key: CEL writes it, PostgreSQL stores none.
  await applyTestWorkflow(db, {
    tenant,
    name: 'cooled',
    trigger: { event: 'key.tested' },
    cooldown: { seconds: 60, key: 'event.payload.a + (event.payload.nul ? "\\x00" : "") + event.payload.b' },
    actions: action,
  });
  await applyTestWorkflow(db, { tenant, name: 'limited', trigger: { event: 'key.tested' }, concurrency: { limit: 1, key: '"\\x00" + event.payload.a' }, actions: action });
  await applyTestWorkflow(db, { tenant, name: 'plain', trigger: { event: 'key.tested' }, actions: action });
  const first = await emit(db, { type: 'key.tested', tenantId: tenant, payload: { a: 'x', b: 'y', nul: true } });
  // Another value, a U+FFFD where the first had its NUL: a key that only replaced the NUL would be the first's.
  const second = await emit(db, { type: 'key.tested', tenantId: tenant, payload: { a: 'x\uFFFD', b: 'y', nul: false } });
  const decided = await waitFor('every workflow to decide both events', async () => {
    const rows = await db.selectFrom('walflow.decisions').select(['event_id', 'outcome']).where('tenant_id', '=', tenant).where('event_id', 'in', [first, second]).execute();
    return rows.length === 6 && rows;
  });
  expect(decided.every((row) => row.outcome === 'fired')).toBe(true);
  expect(await db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', tenant).execute()).toEqual([]);
});
