import type { WalflowDatabase } from '@walflow/core';
import { applyWorkflow, type WorkflowDefinitionInput } from '@walflow/executor';
import { createDatabase, migrate } from '@walflow/server';
import { createTestDatabase, type TestDatabaseOptions } from '@walflow/testing/runtime';
import type { Kysely } from 'kysely';
import pino from 'pino';

const silent = pino({ level: 'silent' });

export interface BenchDatabase {
  url: string;
  /** Also the name of walflow's replication slot: slot names are unique per server, database names too. */
  name: string;
  db: Kysely<WalflowDatabase>;
  drop(): Promise<void>;
}

/**
 * A fresh database per figure, migrated (walflow's slot created first, as `walflow migrate` does), with the given
 * workflows applied; dropping it drops its slots, so one figure's WAL never weighs on the next.
 */
export async function createBenchDatabase(
  adminUrl: string,
  prefix: string,
  workflows: readonly WorkflowDefinitionInput[] = [],
  options: TestDatabaseOptions = {},
): Promise<BenchDatabase> {
  const created = await createTestDatabase(adminUrl, prefix, options);
  const db = createDatabase(created.url, silent, { max: 4 });
  try {
    await migrate({ db, slotName: created.name, logger: silent });
    for (const workflow of workflows) await applyWorkflow(db, workflow);
  } catch (error) {
    await db.destroy();
    await created.drop();
    throw error;
  }
  return {
    url: created.url,
    name: created.name,
    db,
    async drop() {
      await db.destroy();
      await created.drop();
    },
  };
}
