import type { WalflowDatabase } from '@walflow/core';
import { emit } from '@walflow/outbox';
import { createDatabase, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, silentLogger, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
const FIELDS = ['loop_app.counters.bumps', 'loop_app.ledgers.postings'];
let db: Kysely<WalflowDatabase>;
let walflow: RunningWalflow;

beforeAll(async () => {
  walflow = await startTestWalflow(database.url, database.slotName, { updateFields: FIELDS });
  db = createDatabase(database.url, silentLogger);
  // An application table whose trigger announces every change, as applications write them, naming no tenant; and a
  // function of the owner's that emits for whoever may call it.
  await sql`
    CREATE SCHEMA loop_app;
    CREATE TABLE loop_app.counters (id text PRIMARY KEY, bumps integer NOT NULL DEFAULT 0);
    CREATE FUNCTION loop_app.announce() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM walflow.emit('counter.bumped', jsonb_build_object('bumps', NEW.bumps), 'counter', NEW.id);
      RETURN NEW;
    END $$;
    CREATE TRIGGER announce AFTER UPDATE ON loop_app.counters FOR EACH ROW EXECUTE FUNCTION loop_app.announce();
    CREATE TABLE loop_app.ledgers (id text PRIMARY KEY, postings integer NOT NULL DEFAULT 0);
    CREATE FUNCTION loop_app.tell_head_office() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM walflow.emit('ledger.posted', '{}', 'ledger', NEW.id, 'head-office');
      RETURN NEW;
    END $$;
    CREATE TRIGGER tell_head_office AFTER UPDATE ON loop_app.ledgers FOR EACH ROW EXECUTE FUNCTION loop_app.tell_head_office();
    CREATE FUNCTION loop_app.emit_as_owner(tenant text) RETURNS uuid LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
      SELECT walflow.emit('counter.bumped', '{}', tenant_id => tenant, metadata => '{"note": "mine"}')
    $$`.execute(db);
});
afterAll(async () => {
  await walflow?.stop();
  await db?.destroy();
});

describe('an event that a table trigger emits while update_field writes the table', () => {
  it("is the run's tenant's and continues the run's chain, so a workflow whose update sets itself off runs once and is then loop-blocked", async () => {
    const tenant = 'loops';
    const workflowId = await applyTestWorkflow(
      db,
      { tenant, name: 'bump', trigger: { event: 'counter.bumped' }, actions: [{ type: 'update_field', table: 'loop_app.counters', key: { column: 'id', value: '{{event.aggregateId}}' }, column: 'bumps', increment: 1 }] },
      { updateFields: FIELDS },
    );
    await sql`INSERT INTO loop_app.counters (id) VALUES ('c1')`.execute(db);
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
    // Not the run's workflowId and runId, which say a run emitted the event itself.
    const caused = await db.selectFrom('walflow.events').select('metadata').where('tenant_id', '=', tenant).where('id', '<>', first).execute();
    expect(caused.map((event) => event.metadata)).toEqual([{ correlationId: first, causationId: first, depth: 1 }]);
    expect(blocked.workflow_id).toBe(workflowId);
  });

  it("carries none of the run's chain when it is another tenant's", async () => {
    const tenant = 'branch';
    await applyTestWorkflow(
      db,
      { tenant, name: 'post', trigger: { event: 'ledger.post' }, actions: [{ type: 'update_field', table: 'loop_app.ledgers', key: { column: 'id', value: '{{event.aggregateId}}' }, column: 'postings', increment: 1 }] },
      { updateFields: FIELDS },
    );
    await sql`INSERT INTO loop_app.ledgers (id) VALUES ('l1')`.execute(db);
    await emit(db, { type: 'ledger.post', tenantId: tenant, aggregateType: 'ledger', aggregateId: 'l1', payload: {} });
    const told = await waitFor('head office to be told', () => db.selectFrom('walflow.events').select('metadata').where('tenant_id', '=', 'head-office').executeTakeFirst());
    expect(told.metadata).toEqual({});
  });

  it("gives no chain to an application role's events, whatever walflow.cause it sets, even through a function of the owner's", async () => {
    const role = `${database.slotName}_app`;
    const url = new URL(database.url);
    url.username = role;
    const client = new pg.Client({ connectionString: url.toString() });
    let connected = false;
    try {
      await sql`CREATE ROLE ${sql.id(role)} LOGIN NOSUPERUSER IN ROLE walflow_app`.execute(db);
      await sql`GRANT USAGE ON SCHEMA loop_app TO ${sql.id(role)}`.execute(db);
      await client.connect();
      connected = true;
      await client.query(`SET walflow.tenant_id = 'forger'`);
      await client.query(`SET walflow.cause = '{"correlationId": "00000000-0000-7000-8000-000000000000", "depth": 7, "workflowId": "x", "runId": "y"}'`);
      const { rows } = await client.query<{ own: string; owners: string }>(
        `SELECT walflow.emit('counter.bumped', '{}', metadata => '{"note": "mine"}') AS own, loop_app.emit_as_owner('forger') AS owners`,
      );
      for (const id of [rows[0]!.own, rows[0]!.owners]) {
        const event = await waitFor('the event to be recorded', () => db.selectFrom('walflow.events').select('metadata').where('id', '=', id).executeTakeFirst());
        expect(event.metadata).toEqual({ note: 'mine' });
      }
    } finally {
      if (connected) await client.end();
      await sql`DROP OWNED BY ${sql.id(role)}`.execute(db).catch(() => undefined);
      await sql`DROP ROLE IF EXISTS ${sql.id(role)}`.execute(db);
    }
  });
});
