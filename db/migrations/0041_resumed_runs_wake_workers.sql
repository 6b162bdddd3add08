-- Resuming a paused workflow (or deleting one) makes its waiting runs due (0039), but woke no worker: they waited
-- for the next poll. The trigger now notifies as queuing a run does (0011), at commit and only if it released any.
-- Otherwise as in 0039.
CREATE OR REPLACE FUNCTION walflow.hold_runs_of_paused_workflow() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- Runs locked by a worker are executing (or being failed): they are left to it, and queued again they wait
  -- (walflow.queue_run_of_paused_workflow).
  IF TG_OP = 'UPDATE' AND NEW.status = 'paused' THEN
    UPDATE walflow.workflow_runs SET next_attempt_at = 'infinity'
     WHERE id IN (SELECT id FROM walflow.workflow_runs
                   WHERE workflow_id = NEW.id AND status = 'queued' AND next_attempt_at < 'infinity'
                     FOR UPDATE SKIP LOCKED);
  ELSE
    UPDATE walflow.workflow_runs SET next_attempt_at = now()
     WHERE id IN (SELECT id FROM walflow.workflow_runs
                   WHERE workflow_id = OLD.id AND status = 'queued' AND next_attempt_at = 'infinity'
                     FOR UPDATE SKIP LOCKED);
    IF FOUND THEN
      PERFORM pg_notify('walflow_runs_queued', '');
    END IF;
  END IF;
  RETURN NULL;
END
$$;
