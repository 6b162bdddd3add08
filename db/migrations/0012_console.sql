-- The operator console (`walflow start` under /console): the role an operator fixed to one tenant reads as,
-- and indexes for the console's time-window queries. Forward-only.

-- walflow_console reads what an application of its tenant reads — it is a member of walflow_app, under the same
-- row-level security policies and walflow.tenant_id setting — plus the action outcomes of that tenant's runs,
-- which explain shows. It writes nothing and cannot log in: walflow switches to it with SET LOCAL ROLE for each
-- read of such an operator, so the role walflow runs as must be a member (granted below when this migration's
-- role may; otherwise `walflow start` says which GRANT to run). Created only if missing, as 0003 does for
-- walflow_app: roles are cluster-wide and this runs once per database.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'walflow_console') THEN
    CREATE ROLE walflow_console NOLOGIN IN ROLE walflow_app;
    COMMENT ON ROLE walflow_console IS
      'walflow console operator fixed to one tenant: reads as walflow_app, plus walflow.action_outcomes of its '
      'tenant''s runs; never logs in.';
  END IF;
EXCEPTION
  WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
  IF NOT pg_has_role(current_user, 'walflow_console', 'MEMBER') THEN
    EXECUTE format('GRANT walflow_console TO %I', current_user);
  END IF;
EXCEPTION
  WHEN insufficient_privilege OR unique_violation THEN
    RAISE NOTICE 'run GRANT walflow_console TO % as a role that may, to use tenant console tokens', current_user;
END
$$;

-- Row security without FORCE: the owner (walflow's own workers) and superusers are not affected. The runs table
-- in the policy is itself under row security, so a run of another tenant is invisible and so are its outcomes.
ALTER TABLE walflow.action_outcomes ENABLE ROW LEVEL SECURITY;
CREATE POLICY console_read ON walflow.action_outcomes FOR SELECT TO walflow_console
  USING (EXISTS (SELECT FROM walflow.workflow_runs r WHERE r.id = run_id));
GRANT SELECT ON walflow.action_outcomes TO walflow_console;

-- The console's live event list follows received_at; its workflow page counts the last 24 hours of decisions
-- and runs. All three columns grow with insertion order, so block-range indexes serve these ranges at almost
-- no cost to the dispatcher's inserts (a B-tree on each would add a write per row).
CREATE INDEX events_received_at ON walflow.events USING brin (received_at);
CREATE INDEX decisions_decided_at ON walflow.decisions USING brin (decided_at);
CREATE INDEX workflow_runs_created_at ON walflow.workflow_runs USING brin (created_at);
