import type { WalflowDatabase } from '@walflow/core';
import { emit } from '@walflow/outbox';
import { createDatabase, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, silentLogger, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
const FIELD = 'loop_app.counters.bumps';
let db: Kysely<WalflowDatabase>;
let walflow: RunningWalflow;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger);
  // An application table whose trigger announces every change, as applications write them.
  await sql`
    CREATE SCHEMA loop_app;
    CREATE TABLE loop_app.counters (id text PRIMARY KEY, tenant_id text NOT NULL, bumps integer NOT NULL DEFAULT 0);
    CREATE FUNCTION loop_app.announce() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM walflow.emit('counter.bumped', jsonb_build_object('bumps', NEW.bumps), 'counter', NEW.id, NEW.tenant_id);
      RETURN NEW;
    END $$;
    CREATE TRIGGER announce AFTER UPDATE ON loop_app.counters FOR EACH ROW EXECUTE FUNCTION loop_app.announce()`.execute(db);
  walflow = await startTestWalflow(database.url, database.slotName, { updateFields: [FIELD] });
});
afterAll(async () => {
  await walflow?.stop();
  await db?.destroy();
});

describe('an event that a table trigger emits while update_field writes the table', () => {
  it("continues the run's chain, so a workflow whose update sets itself off runs once and is then loop-blocked", async () => {
    const tenant = 'loops';
    const workflowId = await applyTestWorkflow(
      db,
      { tenant, name: 'bump', trigger: { event: 'counter.bumped' }, actions: [{ type: 'update_field', table: 'loop_app.counters', key: { column: 'id', value: '{{event.aggregateId}}' }, column: 'bumps', increment: 1 }] },
      { updateFields: [FIELD] },
    );
    await sql`INSERT INTO loop_app.counters (id, tenant_id) VALUES ('c1', ${tenant})`.execute(db);
    const first = await emit(db, { type: 'counter.bumped', tenantId: tenant, aggregateType: 'counter', aggregateId: 'c1', payload: { bumps: 0 } });

    const blocked = await waitFor('the loop to be blocked', () =>
      db.selectFrom('walflow.decisions').selectAll().where('tenant_id', '=', tenant).where('outcome', '=', 'loop_blocked').executeTakeFirst(),
    );
    expect(blocked.detail).toMatchObject({ correlationId: first, aggregateId: 'c1' });
    // Nothing further comes of it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const run = await db.selectFrom('walflow.workflow_runs').select(['id', 'status']).where('tenant_id', '=', tenant).execute();
    expect(run).toEqual([{ id: expect.any(String), status: 'succeeded' }]);
    const { rows: counter } = await sql<{ bumps: number }>`SELECT bumps FROM loop_app.counters WHERE id = 'c1'`.execute(db);
    expect(counter).toEqual([{ bumps: 1 }]);
    const caused = await db.selectFrom('walflow.events').select('metadata').where('tenant_id', '=', tenant).where('id', '<>', first).execute();
    expect(caused.map((event) => event.metadata)).toEqual([{ correlationId: first, causationId: first, depth: 1, workflowId, runId: run[0]!.id }]);
  });

  it("gives no chain to an application role's events, whatever walflow.cause it sets", async () => {
    const role = `${database.slotName}_app`;
    await sql`CREATE ROLE ${sql.id(role)} LOGIN NOSUPERUSER IN ROLE walflow_app`.execute(db);
    const url = new URL(database.url);
    url.username = role;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await client.query(`SET walflow.tenant_id = 'forger'`);
      await client.query(`SET walflow.cause = '{"correlationId": "00000000-0000-7000-8000-000000000000", "depth": 7, "workflowId": "x", "runId": "y"}'`);
      const { rows } = await client.query<{ id: string }>(`SELECT walflow.emit('counter.bumped', '{}', metadata => '{"note": "mine"}') AS id`);
      const event = await waitFor('the event to be recorded', () => db.selectFrom('walflow.events').select('metadata').where('id', '=', rows[0]!.id).executeTakeFirst());
      expect(event.metadata).toEqual({ note: 'mine' });
    } finally {
      await client.end();
      await sql`DROP ROLE ${sql.id(role)}`.execute(db);
    }
  });
});
