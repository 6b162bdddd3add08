// What programs outside a test runner use (the demo, the bench): nothing here imports vitest.
export { startPostgres } from './start-postgres.js';
export type { ClusterSource, PostgresSource, StartedPostgres, StartedStandby, StartPostgresOptions } from './start-postgres.js';
export { createTestDatabase, type CreatedTestDatabase, type TestDatabaseOptions } from './create-test-database.js';
export { waitFor } from './wait-for.js';
