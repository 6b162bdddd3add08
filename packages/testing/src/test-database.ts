import { afterAll, beforeAll, inject } from 'vitest';
import type { CreatedTestDatabase } from './create-test-database.js';
import { createTestDatabase } from './create-test-database.js';
import './provided-context.js';

export interface UseTestDatabaseOptions {
  /** Database name prefix, [a-z_][a-z0-9_]*; default 'walflow_test'. */
  prefix?: string;
}

/** A database of one test file's own on the shared cluster. */
export interface TestDatabase {
  /** Superuser URL of the cluster's `postgres` database. */
  readonly adminUrl: string;
  /** URL of this file's database; readable once beforeAll has run. */
  readonly url: string;
  /** The database name; readable once beforeAll has run. */
  readonly name: string;
  /** A replication slot name no other test file uses (slot names are cluster-wide). */
  readonly slotName: string;
  /** Whether the cluster can create wal2json slots (readable at collection time, e.g. for `describe.skipIf`). */
  readonly wal2json: boolean;
}

function providedUrl(): string {
  const url = inject('walflowPostgresUrl');
  if (!url) {
    throw new Error(
      "useTestDatabase(): nothing provided 'walflowPostgresUrl'; run this file in a vitest project whose globalSetup " +
        'is packages/testing/src/global-setup.ts (the integration project), or use startPostgres() directly',
    );
  }
  return url;
}

/** Call at the top level of an integration test file: creates a database in beforeAll and drops it in afterAll. */
export function useTestDatabase(options: UseTestDatabaseOptions = {}): TestDatabase {
  let database: CreatedTestDatabase | undefined;
  beforeAll(async () => {
    database = await createTestDatabase(providedUrl(), options.prefix);
  });
  afterAll(async () => {
    await database?.drop();
  });
  const created = (): CreatedTestDatabase => {
    if (database === undefined) {
      throw new Error('useTestDatabase(): the database exists only once beforeAll has run; read it in a hook or test');
    }
    return database;
  };
  return {
    get adminUrl() {
      return providedUrl();
    },
    get url() {
      return created().url;
    },
    get name() {
      return created().name;
    },
    get slotName() {
      return created().name;
    },
    get wal2json() {
      return inject('walflowWal2json');
    },
  };
}
