import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { listEvents, replayRange } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, approvalEvent, openMigrated, silentLogger } from './fixtures.js';

/** A `prefix.*` pattern matches its prefix as written: `_` and `%` are characters of event types, not wildcards. */
const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
const since = new Date(Date.now() - 3_600_000);

beforeAll(async () => {
  db = await openMigrated(database);
  await applyTestWorkflow(db, { tenant: 'patterns', name: 'any', trigger: { event: '*' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
  const events = ['order_line.created', 'orderXline.created', 'order-line.created'].map((type, n) => ({ ...approvalEvent('patterns', n), type }));
  await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events, parked: [], checkpoint: null });
});
afterAll(() => db.destroy());

describe('an event type prefix holding an underscore', () => {
  it('lists and replays the events of that prefix only', async () => {
    const listed = await listEvents(db, { tenantId: 'patterns', type: 'order_line.*', since, limit: 10 });
    expect(listed.map((event) => event.event_type)).toEqual(['order_line.created']);
    const replayed = await replayRange({ db, logger: silentLogger, slotName: database.slotName, from: since, to: new Date(Date.now() + 1000), tenantId: 'patterns', type: 'order_line.*', retentionDays: 30, dryRun: true });
    expect(replayed.events).toBe(1);
  });
});
