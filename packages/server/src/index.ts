export { loadConfig, type WalflowConfig } from './config.js';
export { createDatabase } from './database.js';
export { startHttpServer, type HttpServer, type RouteHandler } from './http-server.js';
export { loadCatalog } from './load-catalog.js';
export { DEFAULT_MIGRATIONS_DIR, migrate, type MigrateOptions, type MigrateResult } from './migrate.js';
export { repairSlot, type RepairOptions, type RepairResult } from './repair.js';
export { startWalflow, type RunningWalflow } from './walflow-process.js';
