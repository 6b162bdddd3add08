import type { ParkedRow, WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, paymentEvent, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

/** The outbox row another transaction writes under `id`, as `walflow dead-letters retry` writes a letter's row again. */
async function writtenAgain(id: string): Promise<void> {
  await sql`INSERT INTO walflow.outbox (id, tenant_id, event_type, payload) VALUES (${id}::uuid, 'deletion', 'payment.received', '{}')`.execute(db);
}

async function inOutbox(id: string): Promise<boolean> {
  return (await db.selectFrom('walflow.outbox').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

describe('the outbox rows a batch deletes', () => {
  it('are those it recorded: a redelivered event or letter leaves a row written since under its id to be recorded', async () => {
    const dispatcher = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    const event = paymentEvent('deletion', { n: 1 });
    const letter: ParkedRow = {
      outboxId: paymentEvent('deletion').id,
      tenantId: 'deletion',
      eventType: 'payment.received',
      code: 'payload_invalid',
      reason: 'payload of payment.received is not a JSON object',
      raw: { payload: '[1]' },
      commit: { xid: event.xid, commitLsn: event.commitLsn, committedAt: event.committedAt },
    };
    const batch = { events: [event], parked: [letter], checkpoint: null };
    expect(await dispatcher.dispatch(batch)).toMatchObject({ recorded: 1, parked: 1 });
    await writtenAgain(event.id);
    await writtenAgain(letter.outboxId!);
    // The same commit again, as PostgreSQL 15 delivers it after a restart: nothing new is recorded or parked.
    expect(await dispatcher.dispatch(batch)).toMatchObject({ recorded: 0, duplicates: 1 });
    expect(await inOutbox(event.id)).toBe(true);
    expect(await inOutbox(letter.outboxId!)).toBe(true);
    expect(await db.selectFrom('walflow.dead_letters').select('id').where('outbox_id', '=', letter.outboxId).execute()).toHaveLength(1);
  });
});
