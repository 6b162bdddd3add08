import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor, withClient } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, startTestWalflow } from './fixtures.js';

/**
 * An application role that may create objects in `public` (the database's owner, on PostgreSQL 15; every role on
 * a cluster upgraded from an older one) puts there a function that matches a call in walflow's own SQL more
 * exactly than the built-in does. In a session whose search path holds `public`, that function would run in
 * walflow's session, with walflow's privileges.
 */
const database = useTestDatabase();
let walflow: RunningWalflow;
let app: string;

beforeAll(async () => {
  // The application's functions are in place before walflow starts: its leader lock is taken at start.
  const db = await openMigrated(database);
  await db.destroy();
  app = `${database.name}_app`;
  await withClient(database.url, async (admin) => {
    await admin.query(`CREATE ROLE ${app} LOGIN IN ROLE walflow_app`);
    await admin.query(`GRANT CREATE ON SCHEMA public TO ${app}`);
  });
  const url = new URL(database.url);
  url.username = app;
  await withClient(url.toString(), async (client) => {
    await client.query('CREATE TABLE public.shadow_calls (caller text, called text)');
    await client.query('GRANT INSERT ON public.shadow_calls TO PUBLIC');
    // walflow.uuid_v7() wrote set_bit(bytea, integer, integer) and numeric * integer; the built-ins take
    // (bytea, bigint, integer) and (numeric, numeric).
    await client.query(`
      CREATE FUNCTION public.set_bit(b bytea, n integer, v integer) RETURNS bytea LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO public.shadow_calls VALUES (current_user, 'set_bit');
        RETURN pg_catalog.set_bit(b, n::bigint, v);
      END $$`);
    await client.query(`
      CREATE FUNCTION public.times(a numeric, b integer) RETURNS numeric LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO public.shadow_calls VALUES (current_user, '*');
        RETURN a OPERATOR(pg_catalog.*) b;
      END $$`);
    await client.query('CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.times)');
    // An untyped first argument prefers text: pg_try_advisory_lock($1, …) would take this one.
    await client.query(`
      CREATE FUNCTION public.pg_try_advisory_lock(k text, n integer) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO public.shadow_calls VALUES (current_user, 'pg_try_advisory_lock');
        RETURN true;
      END $$`);
  });
  walflow = await startTestWalflow(database.url, database.slotName);
});
afterAll(async () => {
  await walflow?.stop();
  await withClient(database.url, async (admin) => {
    await admin.query(`DROP OWNED BY ${app}`);
    await admin.query(`DROP ROLE ${app}`);
  });
});

describe('walflow’s functions in the sessions of application roles', () => {
  it('call PostgreSQL’s built-ins, never a better-matching one another role put in public', async () => {
    const other = `${database.name}_other`;
    await withClient(database.url, (admin) => admin.query(`CREATE ROLE ${other} LOGIN IN ROLE walflow_app`));
    try {
      const url = new URL(database.url);
      url.username = other;
      // The outbox's default id (walflow.uuid_v7()), by walflow.emit and by an insert that leaves the id out.
      const id = await withClient(url.toString(), async (client) => {
        const { rows: emitted } = await client.query<{ id: string }>(`SELECT walflow.emit('x.y', '{}', tenant_id => 'shadowed') AS id`);
        await client.query(`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('shadowed', 'x.y', '{}')`);
        return emitted[0]!.id;
      });
      // A version 7 id of this minute, its milliseconds first.
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(Math.abs(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16) - Date.now())).toBeLessThan(60_000);
      const { rows } = await sql<{ caller: string }>`SELECT DISTINCT caller FROM public.shadow_calls WHERE caller = ${other}`.execute(walflow.db);
      expect(rows).toEqual([]);
    } finally {
      await withClient(database.url, (admin) => admin.query(`DROP OWNED BY ${other}; DROP ROLE ${other}`));
    }
  });
});

describe('walflow’s sessions', () => {
  it('call PostgreSQL’s built-in functions, never a better-matching one an application role put in public', async () => {
    const url = new URL(database.url);
    url.username = app;
    // Metadata that is not an object is parked: the dead letter's id is walflow.uuid_v7(), in walflow's session.
    await withClient(url.toString(), (client) => client.query(`INSERT INTO walflow.outbox (tenant_id, event_type, payload, metadata) VALUES ('shadow', 'x.y', '{}', '[]')`));
    await waitFor('the row to be parked', () => walflow.db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', 'shadow').executeTakeFirst());
    // Not even the application's own insert calls them, for the outbox row's id.
    const { rows } = await sql<{ caller: string; called: string }>`SELECT DISTINCT caller, called FROM public.shadow_calls`.execute(walflow.db);
    expect(rows).toEqual([]);
    expect(walflow.consumerStatus().role).toBe('leader');
  });
});
