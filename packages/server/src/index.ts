export { loadConfig, type WalflowConfig } from './config.js';
export { listAudit, recordAudit, type AuditEntry } from './audit.js';
export { createDatabase, RECORDING_APPLICATION_NAME } from './database.js';
export { discardDeadRun, listDeadRuns, retryDeadRun, type DeadRun } from './dead-runs.js';
export {
  eventsRecordedAfter,
  followSafePoint,
  followStart,
  followEvents,
  listEvents,
  type EventCursor,
  type EventFilter,
  type FollowOptions,
  type ListedEvent,
  type RecordedEvent,
} from './event-log.js';
export { computeHealth, consumerCheck, healthHttpStatus, type ComputeHealthOptions, type HealthCheck, type HealthReport, type HealthState, type HealthThresholds } from './health-report.js';
export { startHttpServer, type HttpServer, type HttpServerOptions, type MountedHandler, type RouteHandler, type RouteResponse } from './http-server.js';
export { loadCatalog } from './load-catalog.js';
export { uncataloguedTypes } from './catalog-warnings.js';
export { WalflowMetrics } from './metrics.js';
export { assertSchemaCurrent, DEFAULT_LOCK_RETRY_FOR_MS, DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_MIGRATIONS_DIR, migrate, type MigrateOptions, type MigrateResult } from './migrate.js';
export { PROCESS_ROLES, partsOf, type ProcessParts, type ProcessRole } from './process-role.js';
export { isRelativeTime, parseTime } from './parse-time.js';
export { prune, type PruneOptions, type PruneResult } from './prune.js';
export { repairSlot, type RepairOptions, type RepairResult } from './repair.js';
export { RETENTION_ACTOR, startRetention, type RetentionOptions } from './retention.js';
export { checkReplayRequest, replayRange, type ReplayOptions, type ReplayRequest, type ReplaySummary } from './replay.js';
export { exactRange } from './replay-range.js';
export { processRetentionDays, prunedBefore } from './pruned-history.js';
export { startWalflow, type RunningWalflow } from './walflow-process.js';
export { secondsToInvalidation, WalRate } from './wal-rate.js';
