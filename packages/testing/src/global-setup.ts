import type { TestProject } from 'vitest/node';
import './provided-context.js';
import { startPostgres } from './start-postgres.js';

/** vitest globalSetup: one PostgreSQL for the whole integration run, handed to test files through inject(). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const postgres = await startPostgres();
  project.provide('walflowPostgresUrl', postgres.url);
  project.provide('walflowWal2json', postgres.wal2json);
  return async () => {
    await postgres.stop();
  };
}
