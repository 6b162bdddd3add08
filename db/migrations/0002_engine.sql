-- The workflow engine: guards (cooldowns, rate limits, loop guard), per-action outcomes, ordering,
-- notifications and auto-pause. Forward-only.

-- History outlives its workflow: a deleted workflow's decisions and runs stay for explain and audit, and its
-- queued runs are cancelled by the workers instead of blocking the delete.
ALTER TABLE walflow.decisions DROP CONSTRAINT decisions_workflow_id_fkey;
ALTER TABLE walflow.workflow_runs DROP CONSTRAINT workflow_runs_workflow_id_fkey;

ALTER TABLE walflow.workflows
  ADD COLUMN bypass               text,
  ADD COLUMN ordering             text    NOT NULL DEFAULT 'aggregate' CHECK (ordering IN ('aggregate', 'none')),
  ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
  ADD COLUMN paused_reason        text;

ALTER TABLE walflow.workflow_runs
  -- The causal chain the triggering event belongs to: the loop guard looks for this workflow in it.
  ADD COLUMN correlation_id uuid,
  -- Whether this run waits for earlier runs of its workflow for the same aggregate (commit order).
  ADD COLUMN ordered        boolean NOT NULL DEFAULT true;
CREATE INDEX workflow_runs_chain ON walflow.workflow_runs (workflow_id, correlation_id, aggregate_type, aggregate_id);
CREATE INDEX workflow_runs_unfinished_by_aggregate ON walflow.workflow_runs (workflow_id, aggregate_type, aggregate_id, commit_lsn, tx_position)
  WHERE status IN ('queued', 'running');

-- One row per (run, action): a retried run skips the actions that already succeeded.
CREATE TABLE walflow.action_outcomes (
  run_id       uuid        NOT NULL,
  action_index integer     NOT NULL,
  action_type  text        NOT NULL,
  status       text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
  result       jsonb       NOT NULL DEFAULT '{}',
  error        text,
  attempts     integer     NOT NULL DEFAULT 1,
  finished_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, action_index)
);

-- Cooldown state per (workflow, key), in event commit time: a backlog or a replay decides as live traffic did.
CREATE TABLE walflow.cooldowns (
  workflow_id uuid        NOT NULL,
  key         text        NOT NULL,
  until       timestamptz NOT NULL,
  run_id      uuid,
  PRIMARY KEY (workflow_id, key)
);

-- Rate-limit counters per (workflow, limit, key, fixed window in commit time). Row locks make the check and
-- the increment atomic across dispatchers.
CREATE TABLE walflow.rate_limit_windows (
  workflow_id  uuid        NOT NULL,
  limit_index  integer     NOT NULL,
  key          text        NOT NULL,
  window_start timestamptz NOT NULL,
  count        integer     NOT NULL DEFAULT 0,
  PRIMARY KEY (workflow_id, limit_index, key, window_start)
);

-- What the create_notification action writes: the application reads and marks them.
CREATE TABLE walflow.notifications (
  id          uuid        PRIMARY KEY DEFAULT walflow.uuid_v7(),
  tenant_id   text        NOT NULL DEFAULT 'default',
  recipient   text        NOT NULL,
  title       text        NOT NULL,
  body        text        NOT NULL DEFAULT '',
  data        jsonb       NOT NULL DEFAULT '{}',
  workflow_id  uuid,
  run_id       uuid,
  action_index integer,
  created_at   timestamptz NOT NULL DEFAULT now(),
  read_at      timestamptz,
  UNIQUE (run_id, action_index)
);
CREATE INDEX notifications_recipient ON walflow.notifications (tenant_id, recipient, created_at DESC);

-- The workflow index reloads when the revision moves; bookkeeping columns (failure counts) must not move it.
DROP TRIGGER workflows_changed ON walflow.workflows;
CREATE TRIGGER workflows_inserted_or_deleted
  AFTER INSERT OR DELETE ON walflow.workflows
  FOR EACH ROW EXECUTE FUNCTION walflow.bump_workflow_revision();
CREATE TRIGGER workflows_changed
  AFTER UPDATE ON walflow.workflows
  FOR EACH ROW WHEN (OLD.definition IS DISTINCT FROM NEW.definition OR OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION walflow.bump_workflow_revision();
CREATE TRIGGER workflows_truncated
  AFTER TRUNCATE ON walflow.workflows
  FOR EACH STATEMENT EXECUTE FUNCTION walflow.bump_workflow_revision();
