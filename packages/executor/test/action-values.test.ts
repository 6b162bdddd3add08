import { randomUUID } from 'node:crypto';
import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openMigrated } from '../../server/test/fixtures.js';
import type { TransactionalActionContext } from '../src/actions/action.js';
import { createNotificationAction } from '../src/actions/create-notification.js';
import { emitEventAction } from '../src/actions/emit-event.js';
import { updateFieldAction } from '../src/actions/update-field.js';
import { createNotificationActionSchema, emitEventActionSchema, updateFieldActionSchema } from '../src/workflow-definition.js';
import type { StoredWorkflow } from '../src/workflow-store.js';

/** What the transactional actions write when a template finds nothing in the event, or something of the wrong kind. */
const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
  await sql`CREATE TABLE public.agents (id text PRIMARY KEY, commission numeric, nickname text)`.execute(db);
  await sql`INSERT INTO public.agents VALUES ('a1', 10, 'ace')`.execute(db);
});
afterAll(() => db.destroy());

const workflow = { id: randomUUID(), tenantId: 'values', name: 'values' } as StoredWorkflow;
const event: EventEnvelope = { ...approvalEvent('values', 1), aggregateId: null, payload: { agentId: 'a1', amount: '2.5', missing: null } };

/** Runs the action in a transaction it rolls back; returns what it returned, or its error. */
async function attempt(act: (context: TransactionalActionContext) => Promise<Record<string, unknown>>): Promise<{ result?: Record<string, unknown>; error?: string; agent?: unknown; row?: unknown }> {
  let outcome: { result?: Record<string, unknown>; error?: string; agent?: unknown; row?: unknown } = {};
  await db
    .transaction()
    .execute(async (trx) => {
      try {
        outcome.result = await act({ event, workflow, runId: randomUUID(), actionIndex: 0, replayId: null, trx });
      } catch (error) {
        outcome = { error: (error as Error).message };
      }
      outcome.agent = (await sql`SELECT commission::text, nickname FROM public.agents WHERE id = 'a1'`.execute(trx)).rows[0];
      outcome.row = (await sql`SELECT aggregate_id, recipient FROM walflow.outbox FULL JOIN walflow.notifications ON false`.execute(trx)).rows;
      throw new Error('roll back');
    })
    .catch(() => undefined);
  return outcome;
}

const update = (fields: Record<string, unknown>) => (context: TransactionalActionContext) =>
  updateFieldAction(updateFieldActionSchema.parse({ type: 'update_field', table: 'public.agents', key: { column: 'id', value: '{{event.payload.agentId}}' }, ...fields }), context);

describe('update_field', () => {
  it('adds a number, or text that is one', async () => {
    expect((await attempt(update({ column: 'commission', increment: '{{event.payload.amount}}' }))).agent).toEqual({ commission: '12.5', nickname: 'ace' });
    expect((await attempt(update({ column: 'commission', increment: -1 }))).agent).toEqual({ commission: '9', nickname: 'ace' });
  });

  it('fails, changing nothing, on an increment the event has no number for', async () => {
    for (const [increment, shown] of [['{{event.payload.nowhere}}', 'null'], ['{{event.payload.missing}}', 'null'], ['{{event.tenantId}}', '"values"'], ['x{{event.payload.nowhere}}', '"x"']]) {
      expect(await attempt(update({ column: 'commission', increment }))).toEqual({ error: `update_field: increment rendered to ${shown}, not a number`, agent: { commission: '10', nickname: 'ace' }, row: [] });
    }
  });

  it('fails, changing nothing, on a value template that found nothing; a null written in the workflow, or held by the event, clears', async () => {
    expect(await attempt(update({ column: 'nickname', value: '{{event.payload.nowhere}}' }))).toEqual({
      error: 'update_field: value "{{event.payload.nowhere}}" rendered to nothing (the event has no value there); write null in the workflow to clear nickname',
      agent: { commission: '10', nickname: 'ace' },
      row: [],
    });
    expect((await attempt(update({ column: 'nickname', value: null }))).agent).toEqual({ commission: '10', nickname: null });
    // A null the event holds is a value: copied.
    expect((await attempt(update({ column: 'nickname', value: '{{event.payload.missing}}' }))).agent).toEqual({ commission: '10', nickname: null });
  });
});

describe('emit_event and create_notification', () => {
  it('take a template that found nothing for no aggregate and no text, not "null" or two quotes', async () => {
    const emitted = await attempt((context) => emitEventAction(emitEventActionSchema.parse({ type: 'emit_event', event: 'x.y', aggregateId: '{{event.payload.nowhere}}' }), context));
    expect(emitted.row).toEqual([{ aggregate_id: null, recipient: null }]);
    const notified = await attempt((context) => createNotificationAction(createNotificationActionSchema.parse({ type: 'create_notification', recipient: '{{event.payload.nowhere}}', title: 't' }), context));
    expect(notified.row).toEqual([{ aggregate_id: null, recipient: '' }]);
  });
});
