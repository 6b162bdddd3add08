import type { ColumnType, Generated } from 'kysely';

/** jsonb: any JSON value goes in; what comes out is parsed by node-postgres. */
type Json<T = unknown> = ColumnType<T, string | T, string | T>;
/** timestamptz: node-postgres returns a Date; walflow writes exact WAL timestamps as text. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** pg_lsn travels as text (`16/B374D848`); parse it with parseLsn before comparing. */
type PgLsn = string;

export type WorkflowStatus = 'active' | 'paused' | 'disabled';
export type RunStatus = 'queued' | 'running' | 'succeeded' | 'dead' | 'cancelled';
export type DecisionOutcome =
  | 'fired'
  | 'condition_false'
  | 'condition_error'
  | 'cooldown'
  | 'rate_limited'
  | 'loop_blocked'
  | 'inactive';

export interface OutboxTable {
  id: Generated<string>;
  tenant_id: Generated<string>;
  event_type: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  payload: Json;
  metadata: Generated<Json<Record<string, unknown>>>;
  created_at: GeneratedTimestamp;
}

export interface EventsTable {
  id: string;
  event_type: string;
  tenant_id: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  payload: Json<Record<string, unknown>>;
  metadata: Json<Record<string, unknown>>;
  committed_at: Timestamp;
  commit_lsn: PgLsn;
  tx_position: number;
  xid: ColumnType<string, string | number, string | number>;
  received_at: GeneratedTimestamp;
  recovered: Generated<boolean>;
}

export interface WorkflowsTable {
  id: Generated<string>;
  tenant_id: string;
  name: string;
  status: WorkflowStatus;
  trigger_event: string;
  condition: string | null;
  cooldown: ColumnType<unknown, string | null, string | null>;
  rate_limits: ColumnType<unknown[], string | unknown[] | undefined, string | unknown[]>;
  actions: Json<unknown[]>;
  definition: Json<Record<string, unknown>>;
  bypass: ColumnType<string | null, string | null | undefined, string | null>;
  ordering: Generated<'aggregate' | 'none'>;
  consecutive_failures: Generated<number>;
  paused_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /** Generated from `definition.concurrency.limit`. */
  concurrency_limit: ColumnType<number | null, never, never>;
  version: Generated<number>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface WorkflowRevisionTable {
  singleton: Generated<boolean>;
  revision: ColumnType<string, never, string | number>;
}

/** A decision that queued no run. A fired decision is its run (`decision_reason`, `decision_detail`). */
export interface DecisionRecordsTable {
  id: Generated<string>;
  workflow_id: string;
  workflow_version: number;
  tenant_id: string;
  event_id: string;
  event_committed_at: Timestamp;
  replay_id: string | null;
  outcome: DecisionOutcome;
  reason: string;
  detail: Json<Record<string, unknown>>;
  /** Set only on decisions recorded before runs carried their own (migration 0019). */
  run_id: string | null;
  decided_at: GeneratedTimestamp;
}

/** The view `walflow.decisions`: every decision, from decision_records and from the runs. Read-only. */
export interface DecisionsView {
  workflow_id: ColumnType<string, never, never>;
  workflow_version: ColumnType<number, never, never>;
  tenant_id: ColumnType<string, never, never>;
  event_id: ColumnType<string, never, never>;
  event_committed_at: ColumnType<Date, never, never>;
  replay_id: ColumnType<string | null, never, never>;
  outcome: ColumnType<DecisionOutcome, never, never>;
  reason: ColumnType<string, never, never>;
  detail: ColumnType<Record<string, unknown>, never, never>;
  run_id: ColumnType<string | null, never, never>;
  decided_at: ColumnType<Date, never, never>;
}

export interface WorkflowRunsTable {
  id: Generated<string>;
  workflow_id: string;
  workflow_version: number;
  tenant_id: string;
  event_id: string;
  event_committed_at: Timestamp;
  event_type: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  commit_lsn: PgLsn;
  tx_position: number;
  replay_id: string | null;
  correlation_id: ColumnType<string | null, string | null | undefined, string | null>;
  ordered: Generated<boolean>;
  /** The workflow's concurrency key for this run ('' without one). */
  concurrency_key: Generated<string>;
  status: Generated<RunStatus>;
  attempts: Generated<number>;
  max_attempts: Generated<number>;
  next_attempt_at: GeneratedTimestamp;
  locked_by: string | null;
  locked_until: Timestamp | null;
  last_error: string | null;
  created_at: GeneratedTimestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  /** Why the run was queued; null on runs queued before migration 0019, whose decision is a decision record. */
  decision_reason: ColumnType<string | null, string | null | undefined, string | null>;
  decision_detail: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
}

export interface DeadLettersTable {
  id: Generated<string>;
  outbox_id: string | null;
  tenant_id: string;
  event_type: string | null;
  code: string;
  reason: string;
  raw: Json;
  commit_lsn: PgLsn | null;
  committed_at: Timestamp | null;
  created_at: GeneratedTimestamp;
  resolved_at: Timestamp | null;
  resolution: string | null;
}

export interface ConsumerStateTable {
  slot_name: string;
  plugin: string;
  slot_created_at: GeneratedTimestamp;
  checkpoint_lsn: PgLsn | null;
  last_commit_at: Timestamp | null;
  leader_id: string | null;
  leader_since: Timestamp | null;
  updated_at: GeneratedTimestamp;
  system_identifier: string | null;
  timeline_id: number | null;
  slot_created_lsn: PgLsn | null;
  repaired_at: Timestamp | null;
  /** Set while a repair has yet to dispatch the outbox rows its new slot starts after (0033). */
  repair_started_at: Timestamp | null;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  checksum: string;
  applied_at: GeneratedTimestamp;
}

export interface ActionOutcomesTable {
  run_id: string;
  action_index: number;
  action_type: string;
  status: 'succeeded' | 'failed';
  result: Json<Record<string, unknown>>;
  error: string | null;
  attempts: Generated<number>;
  finished_at: GeneratedTimestamp;
}

export interface CooldownsTable {
  workflow_id: string;
  key: string;
  until: Timestamp;
  run_id: string | null;
}

export interface RateLimitWindowsTable {
  workflow_id: string;
  limit_index: number;
  key: string;
  window_start: Timestamp;
  count: Generated<number>;
}

export interface NotificationsTable {
  id: Generated<string>;
  tenant_id: string;
  recipient: string;
  title: string;
  body: ColumnType<string, string | undefined, string>;
  data: ColumnType<Record<string, unknown>, string | undefined, string>;
  workflow_id: string | null;
  run_id: string | null;
  action_index: number | null;
  created_at: GeneratedTimestamp;
  read_at: Timestamp | null;
}

export interface AuditLogTable {
  id: Generated<string>;
  at: GeneratedTimestamp;
  actor: string;
  action: string;
  target: string | null;
  arguments: ColumnType<Record<string, unknown>, string | undefined, string>;
}

/** Kysely's view of the `walflow` schema. */
export interface WalflowDatabase {
  'walflow.outbox': OutboxTable;
  'walflow.events': EventsTable;
  'walflow.workflows': WorkflowsTable;
  'walflow.workflow_revision': WorkflowRevisionTable;
  'walflow.decision_records': DecisionRecordsTable;
  'walflow.decisions': DecisionsView;
  'walflow.workflow_runs': WorkflowRunsTable;
  'walflow.dead_letters': DeadLettersTable;
  'walflow.consumer_state': ConsumerStateTable;
  'walflow.schema_migrations': SchemaMigrationsTable;
  'walflow.action_outcomes': ActionOutcomesTable;
  'walflow.cooldowns': CooldownsTable;
  'walflow.rate_limit_windows': RateLimitWindowsTable;
  'walflow.notifications': NotificationsTable;
  'walflow.audit_log': AuditLogTable;
}
