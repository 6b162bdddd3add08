import './provided-context.js';

export { startPostgres } from './start-postgres.js';
export type { ClusterSource, PostgresSource, StartedPostgres, StartedStandby, StartPostgresOptions } from './start-postgres.js';
export { createTestDatabase } from './create-test-database.js';
export type { CreatedTestDatabase, TestDatabaseOptions } from './create-test-database.js';
export { useTestDatabase } from './test-database.js';
export type { TestDatabase, UseTestDatabaseOptions } from './test-database.js';
export { childEnvironment } from './child-environment.js';
export { waitFor } from './wait-for.js';
export { withClient } from './pg-client.js';
