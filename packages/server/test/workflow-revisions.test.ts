import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, silentLogger } from './fixtures.js';
// The dispatcher's cache of workflow indexes, which two batches in flight share.
import { CurrentWorkflows } from '../../executor/src/workflow-index.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger, { max: 4 });
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
});
afterAll(async () => {
  await db.destroy();
});

async function revision(): Promise<string> {
  return (await db.selectFrom('walflow.workflow_revision').select('revision').executeTakeFirstOrThrow()).revision;
}

/** A database whose reads of walflow.workflows wait until `open()`: a batch's load of the workflows, held up. */
function withWorkflowReadsHeld(url: string): { db: Kysely<WalflowDatabase>; open(): void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const held = {
    connect: async () => {
      const client = await pool.connect();
      return {
        query: async (...args: Parameters<pg.PoolClient['query']>) => {
          if (typeof args[0] === 'string' && args[0].includes('from "walflow"."workflows"')) await gate;
          return client.query(...args);
        },
        release: () => client.release(),
      };
    },
    end: () => pool.end(),
  };
  return { db: new Kysely<WalflowDatabase>({ dialect: new PostgresDialect({ pool: held as unknown as pg.Pool }) }), open };
}

const notify = (name: string, event: string) => ({ tenant: 'revisions', name, trigger: { event }, actions: [{ type: 'create_notification' as const, recipient: 'u1', title: name }] });

describe('the workflows two batches in flight decide with', () => {
  it('are each the revision its batch read or newer, never changed under it, and the newest is kept', async () => {
    await applyTestWorkflow(db, notify('first', 'order.placed'));
    const before = await revision();
    const workflows = new CurrentWorkflows();
    const slow = withWorkflowReadsHeld(database.url);
    try {
      // A batch reads the revision and starts loading the workflows; its load is held up.
      let snapshotTaken!: () => void;
      const taken = new Promise<void>((resolve) => (snapshotTaken = resolve));
      const older = slow.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => {
          await sql`SELECT 1`.execute(trx);
          snapshotTaken();
          return workflows.at(trx, before);
        });
      await taken;
      // A workflow is added, and the next batch loads the new revision while the first load still waits.
      await applyTestWorkflow(db, notify('second', 'order.shipped'));
      const after = await revision();
      const newer = await workflows.at(db, after);
      expect(newer.match('revisions', 'order.shipped').map((workflow) => workflow.name)).toEqual(['second']);

      // The first load ends last, with what its snapshot saw.
      slow.open();
      const olderIndex = await older;
      expect(olderIndex.match('revisions', 'order.shipped')).toEqual([]);
      expect(olderIndex.match('revisions', 'order.placed').map((workflow) => workflow.name)).toEqual(['first']);
      // The index the second batch decides with is unchanged, and the one kept is still the newest.
      expect(newer.match('revisions', 'order.shipped').map((workflow) => workflow.name)).toEqual(['second']);
      expect(await workflows.at(db, after)).toBe(newer);
      expect(await workflows.at(db, before)).toBe(newer);
    } finally {
      await slow.db.destroy();
    }
  });
});
