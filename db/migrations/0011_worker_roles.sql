-- Workers in any number of processes: a per-workflow concurrency limit enforced where runs are claimed, and a
-- notification when runs are queued, so idle workers in other processes wake at once. Forward-only.

-- The limit lives in the workflow's document (`concurrency.limit`); a generated column lets the claim read it
-- without parsing JSON, and follows every apply, pause and resume by itself.
ALTER TABLE walflow.workflows
  ADD COLUMN concurrency_limit integer GENERATED ALWAYS AS ((definition #>> '{concurrency,limit}')::integer) STORED;

-- The value of the workflow's concurrency key for this run, computed when the run was queued ('' without a key).
ALTER TABLE walflow.workflow_runs ADD COLUMN concurrency_key text NOT NULL DEFAULT '';
CREATE INDEX workflow_runs_running_by_concurrency_key ON walflow.workflow_runs (workflow_id, concurrency_key)
  WHERE status = 'running';

-- Claims up to max_runs due runs for one worker, in one statement of the caller's: FOR UPDATE SKIP LOCKED lets
-- any number of workers take disjoint runs; runs of one workflow for one aggregate go in commit order; and a
-- workflow with a concurrency limit never has more than that many running runs per key value. Claimers of one
-- (workflow, key) take turns on a transaction advisory lock, and count the running runs only once they hold it,
-- in a statement of its own: a volatile function's statements each take a new snapshot, so the count sees
-- every claim committed before the lock was granted. Each claimed run comes with its event, read here for the
-- same reason: the caller's statement began before this function saw the run, and may not see its event.
CREATE FUNCTION walflow.claim_runs(worker_id text, max_runs integer, lease_ms integer)
RETURNS TABLE (run walflow.workflow_runs, event walflow.events)
LANGUAGE plpgsql VOLATILE
-- Walk the queued runs in order and stop at the first one free, never sort them all: statistics lag behind a
-- burst of queued runs, and with them the planner would sort the whole queue for every claim.
SET enable_sort = off
AS $$
DECLARE
  candidate record;
  claimed_run walflow.workflow_runs;
  claimed integer := 0;
  holds_group_lock boolean := false;
  -- (workflow, key) groups found at their limit, or busy, during this call: skipped until it ends.
  skipped text[] := '{}';
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'walflow.claim_runs needs READ COMMITTED (it is %): the concurrency count must see every committed claim',
      current_setting('transaction_isolation');
  END IF;
  WHILE claimed < max_runs LOOP
    SELECT r.id, r.workflow_id, r.concurrency_key, w.concurrency_limit, r.workflow_id::text || '/' || r.concurrency_key AS grp
      INTO candidate
      FROM walflow.workflow_runs r
      LEFT JOIN walflow.workflows w ON w.id = r.workflow_id
     WHERE r.status = 'queued' AND r.next_attempt_at <= now()
       -- Runs of one workflow for one aggregate go in commit order: wait while an earlier one is unfinished.
       AND NOT (r.ordered AND r.aggregate_id IS NOT NULL AND EXISTS (
             SELECT 1 FROM walflow.workflow_runs p
              WHERE p.workflow_id = r.workflow_id AND p.aggregate_type IS NOT DISTINCT FROM r.aggregate_type
                AND p.aggregate_id = r.aggregate_id AND p.status IN ('queued', 'running')
                AND (p.commit_lsn, p.tx_position, p.id) < (r.commit_lsn, r.tx_position, r.id)))
       -- A group at its limit is passed over here, so it never blocks the runs queued behind it; the count taken
       -- under the group's lock below is what decides.
       AND (w.concurrency_limit IS NULL OR (
             SELECT count(*) FROM walflow.workflow_runs c
              WHERE c.workflow_id = r.workflow_id AND c.concurrency_key = r.concurrency_key AND c.status = 'running') < w.concurrency_limit)
       AND r.workflow_id::text || '/' || r.concurrency_key <> ALL (skipped)
     ORDER BY r.next_attempt_at
     LIMIT 1
     FOR UPDATE OF r SKIP LOCKED;
    EXIT WHEN NOT FOUND;

    IF candidate.concurrency_limit IS NOT NULL THEN
      IF NOT holds_group_lock THEN
        PERFORM pg_advisory_xact_lock(30563, hashtext(candidate.grp));
        holds_group_lock := true;
      -- Holding one group's lock already, only try the next: two claimers then never wait for each other.
      ELSIF NOT pg_try_advisory_xact_lock(30563, hashtext(candidate.grp)) THEN
        skipped := skipped || candidate.grp;
        CONTINUE;
      END IF;
      IF (SELECT count(*) FROM walflow.workflow_runs c
           WHERE c.workflow_id = candidate.workflow_id AND c.concurrency_key = candidate.concurrency_key
             AND c.status = 'running') >= candidate.concurrency_limit THEN
        skipped := skipped || candidate.grp;
        CONTINUE;
      END IF;
    END IF;

    UPDATE walflow.workflow_runs r
       SET status = 'running', attempts = r.attempts + 1, locked_by = worker_id,
           locked_until = now() + lease_ms * interval '1 millisecond', started_at = coalesce(r.started_at, now())
     WHERE r.id = candidate.id
    RETURNING r.* INTO claimed_run;
    claimed := claimed + 1;
    RETURN QUERY SELECT claimed_run, e FROM walflow.events e
                  WHERE e.committed_at = claimed_run.event_committed_at AND e.id = claimed_run.event_id;
  END LOOP;
END $$;

-- Wakes the workers listening in every walflow process when a statement queued runs (the dispatcher's batch,
-- a replay). NOTIFY is delivered at commit, and not at all on a rollback.
CREATE FUNCTION walflow.notify_runs_queued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM queued_runs WHERE status = 'queued') THEN
    PERFORM pg_notify('walflow_runs_queued', '');
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER workflow_runs_notify_queued AFTER INSERT ON walflow.workflow_runs
  REFERENCING NEW TABLE AS queued_runs
  FOR EACH STATEMENT EXECUTE FUNCTION walflow.notify_runs_queued();

REVOKE EXECUTE ON FUNCTION walflow.claim_runs(text, integer, integer), walflow.notify_runs_queued() FROM PUBLIC;
