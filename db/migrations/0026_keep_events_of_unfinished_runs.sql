-- A queued or running run needs its event: a worker reads it when it claims the run, and a run whose event is
-- gone is never handed to a worker. It stays queued, at the head of the queue, where enough of them stall every
-- claim. Prune keeps such events; this refuses to delete one any other way, and says why. (Dropping or
-- truncating a partition bypasses row triggers: prune drops only days without such events.)
CREATE FUNCTION walflow.keep_events_of_unfinished_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM walflow.workflow_runs r WHERE r.event_id = OLD.id AND r.status IN ('queued', 'running')) THEN
    RAISE EXCEPTION 'event % has a queued or running workflow run, which needs it: finish or cancel the run first', OLD.id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN OLD;
END $$;

CREATE TRIGGER events_keep_for_unfinished_runs BEFORE DELETE ON walflow.events
  FOR EACH ROW EXECUTE FUNCTION walflow.keep_events_of_unfinished_runs();
