import { randomUUID } from 'node:crypto';
import { CAUSAL_METADATA_KEYS } from '@walflow/core';
import { emit } from '@walflow/outbox';
import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, countsFor, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
let walflow: RunningWalflow;
/** Application roles (members of walflow_app, neither superuser nor owner); cluster-wide, so named per database. */
let t1Role: string;
let t2Role: string;
let t1WorkflowId: string;
let t2WorkflowId: string;

const tenantTables = ['events', 'workflows', 'workflow_runs', 'decisions', 'notifications', 'dead_letters'] as const;
const rlsViolation = { code: '42501', message: expect.stringMatching(/new row violates row-level security policy for table "outbox"/) };
const permissionDenied = (table: string) => ({ code: '42501', message: `permission denied for table ${table}` });

interface Session {
  tenant?: string;
  actor?: string;
}

/** Runs `fn` on a connection of its own as `role`, with walflow.tenant_id / walflow.actor_id set for the session. */
async function asApp<T>(role: string, session: Session, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const url = new URL(database.url);
  url.username = role;
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    if (session.tenant !== undefined) await client.query(`SELECT set_config('walflow.tenant_id', $1, false)`, [session.tenant]);
    if (session.actor !== undefined) await client.query(`SELECT set_config('walflow.actor_id', $1, false)`, [session.actor]);
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The tenants whose rows `client` can see, per table. */
async function visibleTenants(client: pg.Client): Promise<Record<string, string[]>> {
  const visible: Record<string, string[]> = {};
  for (const table of tenantTables) {
    const { rows } = await client.query<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM walflow.${table} ORDER BY tenant_id`);
    visible[table] = rows.map((row) => row.tenant_id);
  }
  return visible;
}

/** How many rows of `tenant` each table holds, counted by `client` (the owner, or an application role). */
async function rowCounts(query: (text: string) => Promise<{ rows: { count: string }[] }>, tenant: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of tenantTables) {
    const { rows } = await query(`SELECT count(*) FROM walflow.${table} WHERE tenant_id = '${tenant}'`);
    counts[table] = Number(rows[0]?.count);
  }
  return counts;
}

const ownerQuery = (text: string) => sql.raw<{ count: string }>(text).execute(walflow.db);
const everyTable = (tenants: string[]) => Object.fromEntries(tenantTables.map((table) => [table, tenants]));

beforeAll(async () => {
  walflow = await startTestWalflow(database.url, database.slotName);
  const { db } = walflow;
  t1Role = `${database.name}_t1`;
  t2Role = `${database.name}_t2`;
  for (const role of [t1Role, t2Role]) {
    await sql`CREATE ROLE ${sql.id(role)} LOGIN NOSUPERUSER IN ROLE walflow_app`.execute(db);
  }

  // The same workflow for both tenants: a notification and a follow-up event (emitted by walflow itself).
  for (const tenant of ['t1', 't2']) {
    const id = await applyTestWorkflow(db, {
      tenant,
      name: 'order-placed',
      trigger: { event: 'order.placed' },
      actions: [
        { type: 'create_notification', recipient: 'u-1', title: 'Order {{event.aggregateId}}' },
        { type: 'emit_event', event: 'order.acknowledged', aggregateId: '{{event.aggregateId}}' },
      ],
    });
    if (tenant === 't1') t1WorkflowId = id;
    else t2WorkflowId = id;
  }

  // t2 has a row in every table before t1's application does anything.
  await emit(db, { type: 'order.placed', tenantId: 't2', aggregateType: 'order', aggregateId: 'o-t2', payload: {} });
  await sql`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('t2', 'order.broken', '[1]')`.execute(db);
  await waitFor('t2’s order to be processed', async () => {
    const counts = await countsFor(db, 't2');
    return counts.succeeded === 1 && counts.events === 2 && counts.deadLetters === 1;
  });
});

afterAll(async () => {
  if (walflow === undefined) return;
  for (const role of [t1Role, t2Role]) {
    if (role === undefined) continue;
    await sql`DROP OWNED BY ${sql.id(role)}`.execute(walflow.db).catch(() => {});
    await sql`DROP ROLE IF EXISTS ${sql.id(role)}`.execute(walflow.db);
  }
  await walflow.stop();
});

describe('tenant isolation (row-level security and the walflow_app role)', () => {
  it('runs as application roles that are members of walflow_app and neither superuser nor owner', async () => {
    const { rows } = await sql<{ rolname: string; rolsuper: boolean; member: boolean; owner: boolean }>`
      SELECT r.rolname, r.rolsuper, pg_has_role(r.oid, 'walflow_app', 'USAGE') AS member,
             pg_has_role(r.oid, (SELECT relowner FROM pg_class WHERE oid = 'walflow.outbox'::regclass), 'USAGE') AS owner
        FROM pg_roles r WHERE r.rolname IN (${t1Role}, ${t2Role}) ORDER BY r.rolname`.execute(walflow.db);
    expect(rows).toEqual([
      { rolname: t1Role, rolsuper: false, member: true, owner: false },
      { rolname: t2Role, rolsuper: false, member: true, owner: false },
    ]);
    const { rows: role } = await sql<{ rolcanlogin: boolean }>`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'walflow_app'`.execute(walflow.db);
    expect(role).toEqual([{ rolcanlogin: false }]);
  });

  it('lets a tenant’s application emit and read its own rows only; another tenant and no tenant see nothing of it', async () => {
    const { db } = walflow;
    const ids = await asApp(t1Role, { tenant: 't1' }, async (client) => {
      // No tenant given: the session's walflow.tenant_id is the event's tenant.
      const viaFunction = await client.query<{ id: string }>(
        `SELECT walflow.emit('order.placed', '{"n": 1}', aggregate_type => 'order', aggregate_id => 'o-1') AS id`,
      );
      // @walflow/outbox's emit: a plain INSERT of a row whose id it made.
      const viaInsert = await emit(client, { type: 'order.placed', aggregateType: 'order', aggregateId: 'o-2', payload: { n: 2 } });
      await client.query(`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('t1', 'order.broken', '"not an object"')`);
      return [viaFunction.rows[0]!.id, viaInsert];
    });

    await waitFor('t1’s orders to be processed', async () => {
      const counts = await countsFor(db, 't1');
      return counts.succeeded === 2 && counts.events === 4 && counts.deadLetters === 1 && counts.outbox === 0;
    });
    const recorded = await db.selectFrom('walflow.events').select(['id', 'tenant_id']).where('id', 'in', ids).orderBy('id').execute();
    expect(recorded).toEqual([...ids].sort().map((id) => ({ id, tenant_id: 't1' })));

    const t1Counts = await rowCounts(ownerQuery, 't1');
    expect(Object.values(t1Counts).every((count) => count > 0)).toBe(true);
    await asApp(t1Role, { tenant: 't1' }, async (client) => {
      expect(await visibleTenants(client)).toEqual(everyTable(['t1']));
      // All of them: nothing of t1's is hidden from t1.
      expect(await rowCounts((text) => client.query(text), 't1')).toEqual(t1Counts);
      // The outbox is write-only: not even the session's own uncommitted row can be read back later.
      await client.query('BEGIN');
      await client.query(`SELECT walflow.emit('order.drafted', '{}', tenant_id => 't1')`);
      expect((await client.query('SELECT id FROM walflow.outbox')).rows).toEqual([]);
      await client.query('ROLLBACK');
    });
    await asApp(t2Role, { tenant: 't2' }, async (client) => {
      expect(await visibleTenants(client)).toEqual(everyTable(['t2']));
      expect((await client.query('SELECT id FROM walflow.events WHERE id = ANY($1)', [ids])).rows).toEqual([]);
    });
    // No tenant, or an empty one, sees nothing at all.
    await asApp(t1Role, {}, async (client) => expect(await visibleTenants(client)).toEqual(everyTable([])));
    await asApp(t2Role, { tenant: '' }, async (client) => expect(await visibleTenants(client)).toEqual(everyTable([])));
  });

  it('refuses to let a tenant’s application emit in another tenant’s name, and writes nothing', async () => {
    const { db } = walflow;
    const marker = await asApp(t1Role, { tenant: 't1' }, async (client) => {
      await expect(client.query(`SELECT walflow.emit('order.forged', '{}', tenant_id => 't2')`)).rejects.toMatchObject(rlsViolation);
      await expect(client.query(`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES ('t2', 'order.forged', '{}')`)).rejects.toMatchObject(
        rlsViolation,
      );
      await expect(emit(client, { type: 'order.forged', tenantId: 't2', payload: {} })).rejects.toMatchObject(rlsViolation);
      // Naming the 'default' tenant explicitly is another tenant's name too.
      await expect(client.query(`SELECT walflow.emit('order.forged', '{}', tenant_id => 'default')`)).rejects.toMatchObject(rlsViolation);
      return emit(client, { type: 'order.marker', tenantId: 't1', payload: {} });
    });
    // Commit order: once the marker is recorded, anything committed before it would have been too.
    await waitFor('the marker', () => db.selectFrom('walflow.events').select('id').where('id', '=', marker).executeTakeFirst());
    expect(await db.selectFrom('walflow.events').select('id').where('event_type', '=', 'order.forged').execute()).toEqual([]);
    expect(await db.selectFrom('walflow.dead_letters').select('id').where('event_type', '=', 'order.forged').execute()).toEqual([]);
    expect(await db.selectFrom('walflow.outbox').select('id').execute()).toEqual([]);
  });

  it('lets an application with no tenant set (system-wide code) emit for any tenant', async () => {
    const { db } = walflow;
    const id = await asApp(t2Role, {}, async (client) => {
      const { rows } = await client.query<{ id: string }>(`SELECT walflow.emit('order.imported', '{}', tenant_id => 't3') AS id`);
      return rows[0]!.id;
    });
    const event = await waitFor('the t3 event', () => db.selectFrom('walflow.events').select('tenant_id').where('id', '=', id).executeTakeFirst());
    expect(event).toEqual({ tenant_id: 't3' });
  });

  it('gives applications no writes but to the outbox, no reads of internals, and events only through the parent', async () => {
    const { db } = walflow;
    const { rows: partitions } = await sql<{ name: string }>`
      SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'walflow.events'::regclass ORDER BY c.relname`.execute(db);
    expect(partitions.map((partition) => partition.name)).toContain('events_default');
    const daily = partitions.find((partition) => partition.name !== 'events_default')!.name;

    await asApp(t1Role, { tenant: 't1' }, async (client) => {
      const refused: [string, string][] = [
        [`UPDATE walflow.outbox SET payload = '{}'`, 'outbox'],
        // walflow reads created_at as when the row was written: lag, repair's commit time.
        [`INSERT INTO walflow.outbox (event_type, payload, created_at) VALUES ('order.placed', '{}', '1970-01-01')`, 'outbox'],
        ['DELETE FROM walflow.outbox', 'outbox'],
        ['TRUNCATE walflow.outbox', 'outbox'],
        ['SELECT * FROM walflow.outbox', 'outbox'],
        [`INSERT INTO walflow.workflows (tenant_id, name, trigger_event, actions, definition) VALUES ('t1', 'x', 'order.placed', '[]', '{}')`, 'workflows'],
        [`UPDATE walflow.workflows SET status = 'paused'`, 'workflows'],
        [
          `INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid)
           VALUES (gen_random_uuid(), 'order.placed', 't1', '{}', now(), '0/0', 0, 0)`,
          'events',
        ],
        [
          `INSERT INTO walflow.decision_records (workflow_id, workflow_version, tenant_id, event_id, event_committed_at, outcome, reason)
           VALUES (gen_random_uuid(), 1, 't1', gen_random_uuid(), now(), 'cooldown', 'forged')`,
          'decision_records',
        ],
        [
          `INSERT INTO walflow.workflow_runs (workflow_id, workflow_version, tenant_id, event_id, event_committed_at, event_type, commit_lsn, tx_position)
           VALUES (gen_random_uuid(), 1, 't1', gen_random_uuid(), now(), 'order.placed', '0/0', 0)`,
          'workflow_runs',
        ],
        [`UPDATE walflow.workflow_runs SET status = 'cancelled'`, 'workflow_runs'],
        [`DELETE FROM walflow.dead_letters`, 'dead_letters'],
        [`UPDATE walflow.notifications SET read_at = now()`, 'notifications'],
        ['SELECT * FROM walflow.action_outcomes', 'action_outcomes'],
        ['SELECT * FROM walflow.cooldowns', 'cooldowns'],
        ['SELECT * FROM walflow.consumer_state', 'consumer_state'],
        ['SELECT * FROM walflow.events_default', 'events_default'],
        [`SELECT * FROM walflow.${daily}`, daily],
      ];
      for (const [statement, table] of refused) {
        await expect(client.query(statement), statement).rejects.toMatchObject(permissionDenied(table));
      }
      await expect(client.query('SELECT walflow.ensure_event_partitions()')).rejects.toMatchObject({
        code: '42501',
        message: 'permission denied for function ensure_event_partitions',
      });
    });
  });

  it('strips forged causal metadata from a direct INSERT and records the session’s actor when the row has none', async () => {
    const { db } = walflow;
    const forged = { depth: 99, causationId: randomUUID(), correlationId: randomUUID(), workflowId: t2WorkflowId, runId: randomUUID(), replayId: 'forged-replay' };
    const [stripped, explicit, viaFunction, trigger] = await asApp(t1Role, { tenant: 't1', actor: 'u-42' }, async (client) => {
      const insert = async (type: string, metadata: object) =>
        (
          await client.query<{ id: string }>(`INSERT INTO walflow.outbox (tenant_id, event_type, payload, metadata) VALUES ('t1', $1, '{}', $2) RETURNING id`, [
            type,
            JSON.stringify(metadata),
          ])
        ).rows[0]!.id;
      return [
        await insert('audit.forged', { ...forged, note: 'kept' }),
        await insert('audit.explicit_actor', { ...forged, actorId: 'u-7' }),
        (await client.query<{ id: string }>(`SELECT walflow.emit('audit.via_function', '{}', tenant_id => 't1', metadata => '{"depth": 99, "replayId": "r"}') AS id`)).rows[0]!
          .id,
        // Forged depth would trip the loop guard: the workflow must fire as for any application event.
        await insert('order.placed', { ...forged, depth: 99 }),
      ];
    });

    const metadataOf = (id: string) =>
      waitFor(`event ${id}`, () => db.selectFrom('walflow.events').select('metadata').where('id', '=', id).executeTakeFirst()).then((row) => row.metadata);
    expect(await metadataOf(stripped)).toEqual({ note: 'kept', actorId: 'u-42' });
    expect(await metadataOf(explicit)).toEqual({ actorId: 'u-7' });
    expect(await metadataOf(viaFunction)).toEqual({ actorId: 'u-42' });
    expect(await metadataOf(trigger)).toEqual({ actorId: 'u-42' });
    // Without an actor to set, only the forged key makes the guard run.
    const replayOnly = await asApp(t1Role, { tenant: 't1' }, async (client) =>
      (await client.query<{ id: string }>(`INSERT INTO walflow.outbox (event_type, payload, metadata) VALUES ('audit.forged', '{}', '{"replayId": "r"}') RETURNING id`)).rows[0]!.id,
    );
    expect(await metadataOf(replayOnly)).toEqual({});
    // Each causal key on its own, with no actor to set: written directly by an application role, and through
    // walflow.emit by the owner (past the guard, which skips the owner's rows), every one is stripped.
    for (const key of CAUSAL_METADATA_KEYS) {
      const metadata = JSON.stringify({ [key]: 1 });
      const direct = await asApp(t1Role, { tenant: 't1' }, async (client) =>
        (await client.query<{ id: string }>(`INSERT INTO walflow.outbox (event_type, payload, metadata) VALUES ('audit.forged', '{}', $1) RETURNING id`, [metadata])).rows[0]!.id,
      );
      const owners = (await sql<{ id: string }>`SELECT walflow.emit('audit.forged', '{}', tenant_id => 't1', metadata => ${metadata}::jsonb) AS id`.execute(db)).rows[0]!.id;
      expect([await metadataOf(direct), await metadataOf(owners)], key).toEqual([{}, {}]);
    }

    // walflow's own emits (as the owner) go through the same table and keep their causal metadata.
    const decision = await waitFor('the decision on the order', () =>
      db.selectFrom('walflow.decisions').select(['outcome', 'run_id']).where('event_id', '=', trigger).executeTakeFirst(),
    );
    expect(decision.outcome).toBe('fired');
    const followUp = await waitFor('the follow-up event', () =>
      db
        .selectFrom('walflow.events')
        .select(['metadata', 'tenant_id'])
        .where('event_type', '=', 'order.acknowledged')
        .where(sql<boolean>`metadata->>'causationId' = ${trigger}`)
        .executeTakeFirst(),
    );
    expect(followUp).toEqual({
      tenant_id: 't1',
      metadata: { causationId: trigger, correlationId: trigger, depth: 1, workflowId: t1WorkflowId, runId: decision.run_id, actorId: 'u-42' },
    });
  });

  it('never lets an event of one tenant trigger another tenant’s workflow', async () => {
    const { db } = walflow;
    const id = await asApp(t1Role, { tenant: 't1' }, (client) =>
      emit(client, { type: 'order.placed', tenantId: 't1', aggregateType: 'order', aggregateId: 'o-isolated', payload: {} }),
    );
    await waitFor('the run', () => db.selectFrom('walflow.workflow_runs').select('id').where('event_id', '=', id).where('status', '=', 'succeeded').executeTakeFirst());
    const decisions = await db.selectFrom('walflow.decisions').select(['workflow_id', 'tenant_id', 'outcome']).where('event_id', '=', id).execute();
    expect(decisions).toEqual([{ workflow_id: t1WorkflowId, tenant_id: 't1', outcome: 'fired' }]);

    // Over the whole run: t2's workflow decided on t2's events only, and t1's on t1's only.
    const { rows } = await sql<{ workflow_id: string; event_tenant: string }>`
      SELECT DISTINCT d.workflow_id, e.tenant_id AS event_tenant
        FROM walflow.decisions d JOIN walflow.events e ON e.id = d.event_id
       ORDER BY event_tenant`.execute(db);
    expect(rows).toEqual([
      { workflow_id: t1WorkflowId, event_tenant: 't1' },
      { workflow_id: t2WorkflowId, event_tenant: 't2' },
    ]);
    await asApp(t2Role, { tenant: 't2' }, async (client) => {
      expect((await client.query('SELECT workflow_id FROM walflow.decisions WHERE event_id = $1', [id])).rows).toEqual([]);
      expect((await client.query('SELECT DISTINCT workflow_id FROM walflow.decisions')).rows).toEqual([{ workflow_id: t2WorkflowId }]);
    });
  });
});

describe("walflow's recording lock", () => {
  it('cannot be taken by an application role, so none can hold up dispatch with it', async () => {
    const { db } = walflow;
    await asApp(t1Role, { tenant: 't1' }, async (client) => {
      // The advisory key that was the recording lock until 0044: held, it stopped every dispatch.
      await client.query('SELECT pg_advisory_lock(30578, 0)');
      const id = await emit(client, { type: 'order.placed', tenantId: 't1', aggregateType: 'order', aggregateId: 'o-lock', payload: {} });
      await waitFor('the event to be recorded while the key is held', () => db.selectFrom('walflow.events').select('id').where('id', '=', id).executeTakeFirst(), { timeoutMs: 10_000 });
      await client.query('BEGIN');
      await expect(client.query('LOCK TABLE walflow.sink_cursors IN ROW SHARE MODE')).rejects.toMatchObject({ code: '42501' });
      await client.query('ROLLBACK');
    });
  });
});

describe('a role bound to a tenant (walflow.tenant_roles)', () => {
  it('sees and emits its tenant only, whatever walflow.tenant_id it sets or clears, and under SET ROLE', async () => {
    const { db } = walflow;
    await sql`INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES (${t1Role}, 't1')`.execute(db);
    // As the README advises: its sessions start with their tenant set, so its events need not name it.
    await sql`ALTER ROLE ${sql.id(t1Role)} SET walflow.tenant_id = 't1'`.execute(db);
    try {
      const ids = await asApp(t1Role, {}, async (client) => {
        const viaFunction = (await client.query<{ id: string }>(`SELECT walflow.emit('order.bound', '{}') AS id`)).rows[0]!.id;
        const viaInsert = await emit(client, { type: 'order.bound', payload: {} });
        // With the setting cleared it is not system-wide: it reads and writes as t1.
        await client.query(`SET walflow.tenant_id = ''`);
        expect(await visibleTenants(client)).toEqual(everyTable(['t1']));
        await expect(client.query(`SELECT walflow.emit('order.bound', '{}', tenant_id => 't2')`)).rejects.toMatchObject(rlsViolation);
        await expect(emit(client, { type: 'order.bound', tenantId: 't2', payload: {} })).rejects.toMatchObject(rlsViolation);
        // An event that names no tenant then takes the column's 'default', which is not t1.
        await expect(emit(client, { type: 'order.bound', payload: {} })).rejects.toMatchObject(rlsViolation);
        // The binding follows the login role: SET ROLE does not shed it.
        await client.query('SET ROLE walflow_app');
        expect(await visibleTenants(client)).toEqual(everyTable(['t1']));
        return [viaFunction, viaInsert];
      });
      // Asking for another tenant is refused outright, not answered with its own rows.
      await asApp(t1Role, { tenant: 't2' }, async (client) => {
        await expect(client.query('SELECT count(*) FROM walflow.events')).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/is bound to tenant t1/) });
        await expect(client.query(`SELECT walflow.emit('order.bound', '{}')`)).rejects.toMatchObject({ code: '42501' });
      });
      const recorded = await waitFor('both events', async () => {
        const rows = await db.selectFrom('walflow.events').select('tenant_id').where('id', 'in', ids).execute();
        return rows.length === 2 ? rows : undefined;
      });
      expect(recorded).toEqual([{ tenant_id: 't1' }, { tenant_id: 't1' }]);
    } finally {
      await sql`ALTER ROLE ${sql.id(t1Role)} RESET walflow.tenant_id`.execute(db);
      await sql`DELETE FROM walflow.tenant_roles WHERE role_name = ${t1Role}`.execute(db);
    }
    // Unbound again, the role with no tenant set is system-wide code, which reads nothing.
    await asApp(t1Role, {}, async (client) => expect(await visibleTenants(client)).toEqual(everyTable([])));
  });

  it('names a role that exists, refusing a name no role has (saying how it is spelled where only the case differs), and stays bound when the role is renamed', async () => {
    const { db } = walflow;
    await expect(sql`INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES ('no_such_app', 't1')`.execute(db)).rejects.toMatchObject({ code: '42704' });
    await expect(sql`INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES (${t1Role.toUpperCase()}, 't1')`.execute(db)).rejects.toMatchObject({
      code: '42704',
      hint: expect.stringContaining(`'${t1Role}' exists`),
    });
    await sql`INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES (${t1Role}, 't1')`.execute(db);
    const renamed = `${t1Role}_renamed`;
    await sql`ALTER ROLE ${sql.id(t1Role)} RENAME TO ${sql.id(renamed)}`.execute(db);
    try {
      await asApp(renamed, {}, async (client) => expect(await visibleTenants(client)).toEqual(everyTable(['t1'])));
      // Written out by the role's name (as a dump writes it, and a restore reads it back), not by a number that
      // would name another role in another cluster.
      const bound = await sql<{ role: string }>`SELECT role_id::text AS role FROM walflow.tenant_roles WHERE role_name = ${t1Role}`.execute(db);
      expect(bound.rows).toEqual([{ role: renamed }]);
    } finally {
      await sql`ALTER ROLE ${sql.id(renamed)} RENAME TO ${sql.id(t1Role)}`.execute(db);
      await sql`DELETE FROM walflow.tenant_roles WHERE role_name = ${t1Role}`.execute(db);
    }
  });

  it('binds a role dropped and created again under its name, rather than leave it reading every tenant', async () => {
    const { db } = walflow;
    const rotated = `${database.name}_rotated`;
    await sql`CREATE ROLE ${sql.id(rotated)} LOGIN NOSUPERUSER IN ROLE walflow_app`.execute(db);
    await sql`INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES (${rotated}, 't1')`.execute(db);
    try {
      await sql`DROP ROLE ${sql.id(rotated)}`.execute(db);
      await sql`CREATE ROLE ${sql.id(rotated)} LOGIN NOSUPERUSER IN ROLE walflow_app`.execute(db);
      await asApp(rotated, {}, async (client) => expect(await visibleTenants(client)).toEqual(everyTable(['t1'])));
      await asApp(rotated, { tenant: 't2' }, async (client) =>
        expect(client.query('SELECT count(*) FROM walflow.events')).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/is bound to tenant t1/) }),
      );
    } finally {
      await sql`DELETE FROM walflow.tenant_roles WHERE role_name = ${rotated}`.execute(db);
      await sql`DROP ROLE IF EXISTS ${sql.id(rotated)}`.execute(db);
    }
  });

  it('binds a role renamed to the name of a dropped one by its own binding, not by the dropped one’s', async () => {
    const { db } = walflow;
    const [blue, green] = [`${database.name}_blue`, `${database.name}_green`];
    for (const role of [blue, green]) await sql`CREATE ROLE ${sql.id(role)} LOGIN NOSUPERUSER IN ROLE walflow_app`.execute(db);
    await sql`INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES (${blue}, 't1'), (${green}, 't2')`.execute(db);
    try {
      // A blue/green rotation: the old role goes, the new one takes its name.
      await sql`DROP ROLE ${sql.id(blue)}`.execute(db);
      await sql`ALTER ROLE ${sql.id(green)} RENAME TO ${sql.id(blue)}`.execute(db);
      await asApp(blue, {}, async (client) => expect(await visibleTenants(client)).toEqual(everyTable(['t2'])));
    } finally {
      await sql`DELETE FROM walflow.tenant_roles WHERE role_name IN (${blue}, ${green})`.execute(db);
      for (const role of [blue, green]) await sql`DROP ROLE IF EXISTS ${sql.id(role)}`.execute(db);
    }
  });

  it('refuses to bind a role that cannot log in: its members would not be bound', async () => {
    const { db } = walflow;
    const group = `${database.name}_group`;
    await sql`CREATE ROLE ${sql.id(group)} NOLOGIN IN ROLE walflow_app`.execute(db);
    try {
      await expect(sql`INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES (${group}, 't1')`.execute(db)).rejects.toMatchObject({
        code: '22023',
        message: expect.stringContaining('cannot log in'),
      });
    } finally {
      await sql`DROP ROLE ${sql.id(group)}`.execute(db);
    }
  });
});
