import { emit } from '@walflow/outbox';
import { createDatabase, migrate, repairSlot, type RunningWalflow } from '@walflow/server';
import { createTestDatabase, useTestDatabase, waitFor, type CreatedTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { countsFor, silentLogger, startTestWalflow } from './fixtures.js';

// Each test migrates a database of its own: the choice is made when a slot is created.
const shared = useTestDatabase();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function freshDatabase(): Promise<CreatedTestDatabase> {
  const database = await createTestDatabase(shared.adminUrl, 'walflow_decoder');
  cleanups.push(() => database.drop());
  return database;
}

async function slotPlugin(url: string, slotName: string): Promise<string | undefined> {
  const db = createDatabase(url, silentLogger);
  try {
    const { rows } = await sql<{ plugin: string }>`SELECT plugin FROM pg_replication_slots WHERE slot_name = ${slotName}`.execute(db);
    return rows[0]?.plugin;
  } finally {
    await db.destroy();
  }
}

describe('WALFLOW_DECODER', () => {
  it.skipIf(!shared.wal2json)('auto gives a new slot wal2json when the server has it', async () => {
    const database = await freshDatabase();
    const db = createDatabase(database.url, silentLogger);
    try {
      expect(await migrate({ db, slotName: database.name, logger: silentLogger })).toMatchObject({ slotCreated: true, plugin: 'wal2json' });
      expect(await db.selectFrom('walflow.consumer_state').select('plugin').executeTakeFirst()).toEqual({ plugin: 'wal2json' });
    } finally {
      await db.destroy();
    }
  });

  it('refuses an explicit decoder that differs from the existing slot, naming the way out', async () => {
    const database = await freshDatabase();
    const db = createDatabase(database.url, silentLogger);
    try {
      await migrate({ db, slotName: database.name, logger: silentLogger, decoder: 'pgoutput' });
      await expect(migrate({ db, slotName: database.name, logger: silentLogger, decoder: 'wal2json' })).rejects.toMatchObject({
        code: 'slot_plugin_not_allowed',
        message: expect.stringMatching(/exists with plugin pgoutput.*WALFLOW_DECODER=auto.*walflow repair/),
      });
      expect(await migrate({ db, slotName: database.name, logger: silentLogger })).toMatchObject({ applied: [], plugin: 'pgoutput' });
    } finally {
      await db.destroy();
    }
  });

  it('publishes only outbox inserts to pgoutput', async () => {
    const database = await freshDatabase();
    const db = createDatabase(database.url, silentLogger);
    try {
      await migrate({ db, slotName: database.name, logger: silentLogger, decoder: 'pgoutput' });
      const { rows } = await sql<Record<string, unknown>>`
        SELECT p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, array_agg(t.schemaname || '.' || t.tablename) AS tables
          FROM pg_publication p JOIN pg_publication_tables t USING (pubname)
         WHERE p.pubname = 'walflow_outbox' GROUP BY 1, 2, 3, 4`.execute(db);
      expect(rows).toEqual([{ pubinsert: true, pubupdate: false, pubdelete: false, pubtruncate: false, tables: ['walflow.outbox'] }]);
    } finally {
      await db.destroy();
    }
  });

  it.skipIf(!shared.wal2json)('repair keeps the plugin under auto and switches it when told, losing nothing', async () => {
    const database = await freshDatabase();
    const db = createDatabase(database.url, silentLogger);
    const running: RunningWalflow[] = [];
    cleanups.push(async () => {
      for (const walflow of running) await walflow.stop();
      await db.destroy();
    });
    await migrate({ db, slotName: database.name, logger: silentLogger, decoder: 'pgoutput' });
    await emit(db, { type: 'policy.approved', tenantId: 'switch', payload: { n: 1 } });
    // Nothing streams yet: repair finds the event in the outbox and records it.
    expect(await repairSlot({ db, databaseUrl: database.url, slotName: database.name, logger: silentLogger })).toMatchObject({ plugin: 'pgoutput', recovered: 1 });
    expect(await slotPlugin(database.url, database.name)).toBe('pgoutput');

    await emit(db, { type: 'policy.approved', tenantId: 'switch', payload: { n: 2 } });
    expect(await repairSlot({ db, databaseUrl: database.url, slotName: database.name, logger: silentLogger, decoder: 'wal2json' })).toMatchObject({
      plugin: 'wal2json',
      recovered: 1,
    });
    expect(await slotPlugin(database.url, database.name)).toBe('wal2json');
    expect(await db.selectFrom('walflow.consumer_state').select('plugin').executeTakeFirst()).toEqual({ plugin: 'wal2json' });

    running.push(await startTestWalflow(database.url, database.name));
    await emit(db, { type: 'policy.approved', tenantId: 'switch', payload: { n: 3 } });
    await waitFor('the event after the switch', async () => (await countsFor(db, 'switch')).events === 3);
    expect(await countsFor(db, 'switch')).toMatchObject({ events: 3, outbox: 0 });
  });
});
