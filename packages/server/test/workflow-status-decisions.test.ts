import type { WalflowDatabase } from '@walflow/core';
import type { Dispatcher } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openDispatcher } from './fixtures.js';

/** What a workflow's status means to the events that match its trigger. */
const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

const onApproval = (name: string, status: 'active' | 'paused' | 'disabled') => ({
  tenant: 'statuses',
  name,
  status,
  trigger: { event: 'policy.approved' },
  actions: [{ type: 'emit_event' as const, event: 'x.y' }],
});

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [onApproval('on', 'active'), onApproval('held', 'paused'), onApproval('off', 'disabled')]));
});
afterAll(() => db.destroy());

describe('a matching event', () => {
  it('fires an active workflow, is decided inactive by a paused one, and is not considered by a disabled one at all', async () => {
    const event = approvalEvent('statuses', 1);
    expect(await dispatcher.dispatch({ events: [event], parked: [], checkpoint: null })).toMatchObject({ recorded: 1, runsQueued: 1 });
    const decided = await db
      .selectFrom('walflow.decisions as d')
      .innerJoin('walflow.workflows as w', 'w.id', 'd.workflow_id')
      .select(['w.name', 'd.outcome'])
      .where('d.event_id', '=', event.id)
      .orderBy('w.name')
      .execute();
    expect(decided).toEqual([
      { name: 'held', outcome: 'inactive' },
      { name: 'on', outcome: 'fired' },
    ]);
  });
});
