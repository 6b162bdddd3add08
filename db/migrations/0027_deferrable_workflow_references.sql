-- A backtest (`replay --dry-run --workflow-file`) decides with a workflow that is not applied: its runs and
-- decisions, written in a transaction that is rolled back, name a workflow id that exists nowhere. Applying the
-- candidate in that transaction instead locked walflow.workflow_revision (and the workflow's row) for the whole
-- backtest, so every apply, pause, resume and auto-pause waited for it. Deferrable references let the backtest
-- defer their check to a commit that never comes; every other transaction still checks them at once.
DO $$
DECLARE
  reference record;
BEGIN
  FOR reference IN
    SELECT c.conrelid::regclass AS referencing, c.conname AS name
      FROM pg_constraint c
     WHERE c.contype = 'f' AND c.confrelid = 'walflow.workflows'::regclass
       AND c.conrelid IN ('walflow.workflow_runs'::regclass, 'walflow.decision_records'::regclass)
  LOOP
    EXECUTE format('ALTER TABLE %s ALTER CONSTRAINT %I DEFERRABLE INITIALLY IMMEDIATE', reference.referencing, reference.name);
  END LOOP;
END $$;
