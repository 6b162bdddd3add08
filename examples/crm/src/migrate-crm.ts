import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import type { CrmDatabase } from './schema.js';
import * as agencyTables from './migrations/0001_agency_tables.js';
import * as userRoleChangedTrigger from './migrations/0002_user_role_changed_trigger.js';

/**
 * The example's migrations, listed here rather than read from a directory: the same list works from src/
 * (tests) and dist/ (the demo), and a bundler would keep it. Names sort in the order they apply.
 */
const migrations: Record<string, Migration> = {
  '0001_agency_tables': agencyTables,
  '0002_user_role_changed_trigger': userRoleChangedTrigger,
};

/** Applies the crm migrations not applied yet (Kysely's Migrator, its bookkeeping in schema crm); needs walflow migrated first. */
export async function migrateCrm(db: Kysely<CrmDatabase>): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    migrationTableSchema: 'crm',
  });
  const result = await migrator.migrateToLatest();
  if (result.error !== undefined) {
    const failed = result.results?.find((migration) => migration.status === 'Error')?.migrationName ?? 'the migrator';
    const reason = result.error instanceof Error ? result.error.message : 'see the cause';
    throw new Error(`crm migration failed in ${failed}: ${reason}`, { cause: result.error });
  }
  return result;
}
