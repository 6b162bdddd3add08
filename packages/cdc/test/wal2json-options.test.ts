import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../server/test/fixtures.js';
import { wal2jsonOptions } from '../src/wal2json-decoder.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
/** Named after this file's database: a run killed before afterAll leaves no slot in the way of the next. */
const probeSlot = () => `${database.slotName}_probe`;

beforeAll(async () => {
  if (!database.wal2json) return;
  db = createDatabase(database.url, silentLogger);
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  await sql`SELECT pg_create_logical_replication_slot(${probeSlot()}, 'wal2json')`.execute(db);
});
afterAll(async () => {
  if (!database.wal2json) return;
  await sql`SELECT pg_drop_replication_slot(${probeSlot()})`.execute(db);
  await db.destroy();
});

/** What a stream with walflow's wal2json options carries of everything written since the probe slot was made. */
async function streamed(): Promise<{ action: string; prefix?: string }[]> {
  // As pg-logical-replication sends them: option names in dash case, booleans as on/off.
  const options = Object.entries(wal2jsonOptions()).flatMap(([name, value]) => [
    name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`),
    typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value),
  ]);
  const { rows } = await sql<{ data: string }>`
    SELECT data FROM pg_logical_slot_get_changes(${probeSlot()}, NULL, NULL, VARIADIC ${options}::text[])`.execute(db);
  return rows.map((row) => JSON.parse(row.data) as { action: string; prefix?: string });
}

describe.skipIf(!database.wal2json)("walflow's wal2json stream", () => {
  it('carries no logical message, whatever its prefix, yet the transaction a heartbeat makes comes through', async () => {
    await sql`SELECT pg_logical_emit_message(true, 'walflow', 'heartbeat')`.execute(db);
    await sql`SELECT pg_logical_emit_message(false, 'walflow', repeat(chr(1), 1000))`.execute(db);
    await sql`SELECT pg_logical_emit_message(true, 'anything', 'else')`.execute(db);
    const actions = (await streamed()).map((message) => message.action);
    expect(actions).not.toContain('M');
    expect(actions.filter((action) => action === 'B').length).toBeGreaterThanOrEqual(2);
    expect(actions.filter((action) => action === 'C').length).toBe(actions.filter((action) => action === 'B').length);
  });
});
