-- The health report counts dead runs every few seconds: keep that an index-only look.
CREATE INDEX workflow_runs_dead ON walflow.workflow_runs (workflow_id) WHERE status = 'dead';
