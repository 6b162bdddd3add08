import type { TestProject } from 'vitest/node';
import './provided-context.js';
import { startPostgres } from './start-postgres.js';

/** vitest globalSetup: one PostgreSQL for the whole integration run, handed to test files through inject(). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await startPostgres();
  // CI sets it: the tests that need wal2json skip without it, and a run that skipped them must not pass as a whole.
  if (process.env.WALFLOW_TEST_REQUIRE_WAL2JSON === '1' && !postgres.wal2json) {
    await postgres.stop();
    throw new Error(`WALFLOW_TEST_REQUIRE_WAL2JSON=1, and the PostgreSQL from ${postgres.source} has no wal2json: install postgresql-<major>-wal2json`);
  }
  project.provide('walflowPostgresUrl', postgres.url);
  project.provide('walflowWal2json', postgres.wal2json);
  return async () => {
    await postgres.stop();
  };
}
