import { COPY_FROM_ROWS } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor, withClient } from '@walflow/testing';
import { sql } from 'kysely';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, countCopies, countsFor, noteLoads, startTestWalflow } from './fixtures.js';

/**
 * walflow as the role that owns its tables and is not a superuser, the other way the README allows: the owner
 * migrates (creating the slot, hence REPLICATION), then records events and runs under row security, which a
 * superuser bypasses.
 */
const database = useTestDatabase();
let walflow: RunningWalflow;
let owner: string;

beforeAll(async () => {
  owner = `${database.name}_owner`;
  await withClient(database.adminUrl, async (admin) => {
    // CREATEROLE: the first migration of a cluster creates walflow_app.
    await admin.query(`CREATE ROLE ${owner} LOGIN REPLICATION CREATEROLE NOSUPERUSER`);
    await admin.query(`ALTER DATABASE ${database.name} OWNER TO ${owner}`);
  });
  // The README's hardening, as an operator would paste it: walflow must work with the functions given back to it alone.
  await withClient(database.url, (admin) => admin.query(readmeRevokeBlock().replace('TO walflow', `TO ${owner}`)));
  const url = new URL(database.url);
  url.username = owner;
  walflow = await startTestWalflow(url.toString(), database.slotName);
});

afterAll(async () => {
  await walflow?.stop();
  await withClient(database.url, async (admin) => {
    await admin.query(`REASSIGN OWNED BY ${owner} TO CURRENT_USER`);
    await admin.query(`DROP OWNED BY ${owner}`);
  });
  await withClient(database.adminUrl, (admin) => admin.query(`DROP ROLE IF EXISTS ${owner}`));
});

describe('walflow as the owner of its tables, not a superuser', () => {
  it('owns the tables it records into, which keep row security enabled', async () => {
    const { rows } = await sql<{ relname: string; owner: string; rolsuper: boolean; relrowsecurity: boolean }>`
      SELECT c.relname, r.rolname AS owner, r.rolsuper, c.relrowsecurity
        FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
       WHERE c.oid IN ('walflow.events'::regclass, 'walflow.workflow_runs'::regclass) ORDER BY c.relname`.execute(walflow.db);
    expect(rows).toEqual([
      { relname: 'events', owner, rolsuper: false, relrowsecurity: true },
      { relname: 'workflow_runs', owner, rolsuper: false, relrowsecurity: true },
    ]);
  });

  it('records events and runs them: the dispatcher’s COPY is allowed under the owner’s row security', async () => {
    const { db } = walflow;
    await noteLoads(db);
    await applyTestWorkflow(db, {
      tenant: 'owned',
      name: 'notify-on-order',
      trigger: { event: 'order.placed' },
      actions: [{ type: 'create_notification', recipient: 'u-1', title: 'Order {{event.aggregateId}}' }],
    });
    // One transaction: its events are one batch, large enough for COPY.
    const orders = COPY_FROM_ROWS + 20;
    await db.transaction().execute(async (trx) => {
      for (let n = 1; n <= orders; n++) {
        await emit(trx, { type: 'order.placed', tenantId: 'owned', aggregateType: 'order', aggregateId: `o-${n}`, payload: { n } });
      }
    });
    await waitFor('the orders to be run', async () => {
      const counts = await countsFor(db, 'owned');
      return counts.events === orders && counts.succeeded === orders && counts.outbox === 0;
    });
    expect(await countsFor(db, 'owned')).toMatchObject({ events: orders, succeeded: orders, deadLetters: 0, outbox: 0 });
    // In one transaction: a refused COPY would have had the batch split by poison isolation, whose small
    // batches go in by INSERT.
    const { rows } = await sql<{ transactions: string }>`
      SELECT count(DISTINCT xmin::text) AS transactions FROM walflow.events WHERE tenant_id = 'owned'`.execute(db);
    expect(rows).toEqual([{ transactions: '1' }]);
    expect([await countCopies(db, 'events'), await countCopies(db, 'workflow_runs')]).toEqual([1, 1]);
  });

  it('keeps working once the README\'s DO block took the advisory locks and logical messages away from every other role', async () => {
    const app = `${database.name}_app`;
    await withClient(database.url, (admin) => admin.query(`CREATE ROLE ${app} LOGIN IN ROLE walflow_app`));
    try {
      const url = new URL(database.url);
      url.username = app;
      await withClient(url.toString(), async (client) => {
        for (const call of ['pg_advisory_lock(30000, 0)', 'pg_try_advisory_lock_shared(1::bigint)', 'pg_advisory_xact_lock_shared(1, 2)', "pg_logical_emit_message(true, 'walflow', 'x')"]) {
          await expect(client.query(`SELECT ${call}`), call).rejects.toThrow(/permission denied for function/);
        }
      });
      // walflow itself, given them back, still leads its slot and records (the test before ran its workflow).
      expect(walflow.consumerStatus().role).toBe('leader');
    } finally {
      await withClient(database.url, (admin) => admin.query(`DROP ROLE ${app}`));
    }
  });
});

/** The `DO` block of the README's security section, which revokes the lock functions and gives them to walflow's role. */
function readmeRevokeBlock(): string {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const block = /```sql\n(\s*DO \$\$[\s\S]*?END \$\$;)\n\s*```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('README.md has no DO block revoking the advisory lock functions');
  return block;
}
