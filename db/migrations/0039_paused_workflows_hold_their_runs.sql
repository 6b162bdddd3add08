-- Pausing a workflow, by hand or by itself after repeated deaths, stopped only new runs: its queued runs went on
-- executing, every one retried to its death against the broken endpoint that paused it. A paused workflow's runs
-- now wait: the claim passes them over (claim_runs as in 0029, with that one condition), and so that its walks do
-- not read past them, pausing moves the queued ones out of the queue's due range (next_attempt_at 'infinity'),
-- and resuming makes those due at once. Runs executing as it pauses finish; one that fails then waits too.
CREATE OR REPLACE FUNCTION walflow.claim_runs(worker_id text, max_runs integer, lease_ms integer,
                                              calling_out text[] DEFAULT '{}', max_calling_out integer DEFAULT NULL,
                                              hold boolean DEFAULT false)
RETURNS TABLE (run walflow.workflow_runs, event walflow.events, actions_done integer[])
LANGUAGE plpgsql VOLATILE
SET enable_sort = off
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
  candidate record;
  claimed_run walflow.workflow_runs;
  -- The free runs the walk found, in its order, as parallel arrays (a subtransaction cannot hand back records).
  walked_ids uuid[] := '{}';
  walked_workflows uuid[] := '{}';
  walked_keys text[] := '{}';
  walked_limits integer[] := '{}';
  walked_groups text[] := '{}';
  walked_calls_out boolean[] := '{}';
  -- Runs of workflows without a limit the walk has kept (a group's runs may yet be passed over): it stops there.
  takeable integer := 0;
  passed_over boolean := false;
  walk refcursor;
  takeable_calling_out integer := 0;
  -- Candidates of workflows without a limit, claimed together at the end: leased, or only held.
  free uuid[] := '{}';
  held uuid[] := '{}';
  claimed integer := 0;
  claimed_calling_out integer := 0;
  holds_group_lock boolean := false;
  -- (workflow, key) groups found at their limit, or busy, during this call.
  skipped text[] := '{}';
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'walflow.claim_runs needs READ COMMITTED (it is %): the concurrency count must see every committed claim',
      current_setting('transaction_isolation');
  END IF;

  BEGIN
    OPEN walk FOR
        SELECT r.id, r.workflow_id, r.concurrency_key, w.concurrency_limit, r.workflow_id::text || '/' || r.concurrency_key AS grp,
               coalesce(EXISTS (SELECT FROM jsonb_array_elements(w.actions) a WHERE a->>'type' = ANY (calling_out)), false) AS calls_out
          FROM walflow.workflow_runs r
          LEFT JOIN walflow.workflows w ON w.id = r.workflow_id
         WHERE r.status = 'queued' AND r.next_attempt_at <= now()
           -- A paused workflow's runs wait for it to be resumed.
           AND w.status IS DISTINCT FROM 'paused'
           -- Runs of one workflow for one aggregate go in commit order: wait while an earlier one is unfinished.
           -- Written so that workflow_runs_unfinished_by_aggregate answers it (0014): one branch per nullness of
           -- aggregate_type, each with plain equalities, the index's status predicate, and a range on commit_lsn.
           AND NOT (r.ordered AND r.aggregate_id IS NOT NULL AND (
                 (r.aggregate_type IS NOT NULL AND EXISTS (
                   SELECT 1 FROM walflow.workflow_runs p
                    WHERE p.workflow_id = r.workflow_id AND p.aggregate_type = r.aggregate_type AND p.aggregate_id = r.aggregate_id
                      AND p.status IN ('queued', 'running') AND p.commit_lsn <= r.commit_lsn
                      AND (p.commit_lsn, p.tx_position, p.id) < (r.commit_lsn, r.tx_position, r.id)))
              OR (r.aggregate_type IS NULL AND EXISTS (
                   SELECT 1 FROM walflow.workflow_runs p
                    WHERE p.workflow_id = r.workflow_id AND p.aggregate_type IS NULL AND p.aggregate_id = r.aggregate_id
                      AND p.status IN ('queued', 'running') AND p.commit_lsn <= r.commit_lsn
                      AND (p.commit_lsn, p.tx_position, p.id) < (r.commit_lsn, r.tx_position, r.id)))))
           -- A group at its limit is passed over here, so it never blocks the runs queued behind it; the count taken
           -- under the group's lock below is what decides.
           AND (w.concurrency_limit IS NULL OR (
                 SELECT count(*) FROM walflow.workflow_runs c
                  WHERE c.workflow_id = r.workflow_id AND c.concurrency_key = r.concurrency_key AND c.status = 'running') < w.concurrency_limit)
         ORDER BY r.next_attempt_at
         LIMIT 2 * max_runs
         FOR UPDATE OF r SKIP LOCKED;
    -- One row at a time: a FOR loop fetches ten, and would lock the rows after the last one taken.
    LOOP
      EXIT WHEN takeable >= max_runs;
      FETCH walk INTO candidate;
      EXIT WHEN NOT FOUND;
      -- A run that calls out beyond the claim's share, and a group's run (its group may be found at its limit),
      -- may be passed over.
      IF candidate.calls_out AND candidate.concurrency_limit IS NULL AND takeable_calling_out >= max_calling_out THEN
        passed_over := true;
        CONTINUE;
      END IF;
      passed_over := passed_over OR candidate.concurrency_limit IS NOT NULL;
      walked_ids := walked_ids || candidate.id;
      walked_workflows := walked_workflows || candidate.workflow_id;
      walked_keys := walked_keys || candidate.concurrency_key;
      walked_limits := walked_limits || candidate.concurrency_limit;
      walked_groups := walked_groups || candidate.grp;
      walked_calls_out := walked_calls_out || candidate.calls_out;
      IF candidate.concurrency_limit IS NULL THEN
        takeable := takeable + 1;
        takeable_calling_out := takeable_calling_out + candidate.calls_out::int;
      END IF;
    END LOOP;
    CLOSE walk;
    -- A walk that may have passed a run over rolls its subtransaction back, and with it every row lock it took;
    -- the claim locks again below the runs it takes. Otherwise (a walk of runs it all takes, the common case) the
    -- subtransaction is released, and its locks are the claim's.
    IF passed_over THEN
      RAISE EXCEPTION 'claim_runs: releasing the walk''s locks' USING ERRCODE = 'WF001';
    END IF;
  EXCEPTION WHEN SQLSTATE 'WF001' THEN NULL;
  END;

  FOR candidate IN
    SELECT c.id, c.workflow_id, c.concurrency_key, c.concurrency_limit, c.grp, c.calls_out
      FROM unnest(walked_ids, walked_workflows, walked_keys, walked_limits, walked_groups, walked_calls_out)
        AS c (id, workflow_id, concurrency_key, concurrency_limit, grp, calls_out)
  LOOP
    EXIT WHEN claimed >= max_runs;
    CONTINUE WHEN candidate.calls_out AND claimed_calling_out >= max_calling_out;
    IF candidate.concurrency_limit IS NULL THEN
      IF hold AND NOT candidate.calls_out THEN
        held := held || candidate.id;
      ELSE
        free := free || candidate.id;
      END IF;
      claimed := claimed + 1;
      claimed_calling_out := claimed_calling_out + candidate.calls_out::int;
      CONTINUE;
    END IF;
    CONTINUE WHEN candidate.grp = ANY (skipped);
    IF NOT holds_group_lock AND NOT hold THEN
      PERFORM pg_advisory_xact_lock(30563, hashtext(candidate.grp));
      holds_group_lock := true;
    -- Holding one group's lock already (or the transaction open for long), only try the next: two claimers then
    -- never wait for each other.
    ELSIF NOT pg_try_advisory_xact_lock(30563, hashtext(candidate.grp)) THEN
      skipped := skipped || candidate.grp;
      CONTINUE;
    ELSE
      holds_group_lock := true;
    END IF;
    IF (SELECT count(*) FROM walflow.workflow_runs c
         WHERE c.workflow_id = candidate.workflow_id AND c.concurrency_key = candidate.concurrency_key
           AND c.status = 'running') >= candidate.concurrency_limit THEN
      skipped := skipped || candidate.grp;
      CONTINUE;
    END IF;
    UPDATE walflow.workflow_runs r
       SET status = 'running', attempts = r.attempts + 1, locked_by = worker_id,
           locked_until = now() + lease_ms * interval '1 millisecond', started_at = coalesce(r.started_at, now())
     WHERE r.id = (SELECT f.id FROM walflow.workflow_runs f
                    WHERE f.id = candidate.id AND f.status = 'queued' AND f.next_attempt_at <= now()
                      FOR UPDATE SKIP LOCKED)
    RETURNING r.* INTO claimed_run;
    -- Taken by another claimer since the walk, or held by one (never waited for under the group's lock).
    CONTINUE WHEN NOT FOUND;
    claimed := claimed + 1;
    claimed_calling_out := claimed_calling_out + candidate.calls_out::int;
    RETURN QUERY SELECT claimed_run, e, walflow.actions_done(claimed_run.id) FROM walflow.events e
                  WHERE e.committed_at = claimed_run.event_committed_at AND e.id = claimed_run.event_id;
  END LOOP;

  -- After a rolled-back walk, the runs to claim together are locked again: those another claimer took since the
  -- walk are left out. A released walk's locks are the claim's already.
  IF passed_over AND cardinality(free) > 0 THEN
    free := ARRAY(SELECT r.id FROM walflow.workflow_runs r
                   WHERE r.id = ANY (free) AND r.status = 'queued' AND r.next_attempt_at <= now()
                     FOR UPDATE SKIP LOCKED);
  END IF;
  IF passed_over AND cardinality(held) > 0 THEN
    held := ARRAY(SELECT r.id FROM walflow.workflow_runs r
                   WHERE r.id = ANY (held) AND r.status = 'queued' AND r.next_attempt_at <= now()
                     FOR UPDATE SKIP LOCKED);
  END IF;

  -- Each run's event through the key of its day's partition: as a join the planner would scan every partition
  -- (it cannot count on run-time pruning); OFFSET 0 keeps the subquery a per-run lookup. A claim that found
  -- nothing, half of all claims under steady load, runs neither statement.
  IF cardinality(free) > 0 THEN
    RETURN QUERY
    WITH claimed_runs AS (
      UPDATE walflow.workflow_runs r
         SET status = 'running', attempts = r.attempts + 1, locked_by = worker_id,
             locked_until = now() + lease_ms * interval '1 millisecond', started_at = coalesce(r.started_at, now())
       WHERE r.id = ANY (free)
      RETURNING r AS run
    )
    SELECT c.run, x.e, walflow.actions_done((c.run).id) FROM claimed_runs c
     CROSS JOIN LATERAL (
       SELECT e FROM walflow.events e WHERE e.committed_at = (c.run).event_committed_at AND e.id = (c.run).event_id OFFSET 0) x;
  END IF;
  IF cardinality(held) > 0 THEN
    RETURN QUERY
    SELECT r, x.e, walflow.actions_done(r.id) FROM walflow.workflow_runs r
     CROSS JOIN LATERAL (
       SELECT e FROM walflow.events e WHERE e.committed_at = r.event_committed_at AND e.id = r.event_id OFFSET 0) x
     WHERE r.id = ANY (held);
  END IF;
END $$;

-- A workflow paused, resumed or deleted: its queued runs leave the due range, come back to it, or (deleted) come
-- back to be cancelled by the next claim, as the runs of a deleted workflow are.
CREATE FUNCTION walflow.hold_runs_of_paused_workflow() RETURNS trigger
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
  END IF;
  RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION walflow.hold_runs_of_paused_workflow() FROM PUBLIC;
CREATE TRIGGER hold_runs_of_paused_workflow AFTER UPDATE OF status ON walflow.workflows
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND 'paused' IN (OLD.status, NEW.status))
  EXECUTE FUNCTION walflow.hold_runs_of_paused_workflow();
CREATE TRIGGER release_runs_of_deleted_workflow AFTER DELETE ON walflow.workflows
  FOR EACH ROW WHEN (OLD.status = 'paused')
  EXECUTE FUNCTION walflow.hold_runs_of_paused_workflow();

-- A run queued again while its workflow is paused (a retry after a failure, an operator's retry of a dead run, a
-- lease that ran out) waits out of the due range too. Only a run's return to the queue pays the lookup.
CREATE FUNCTION walflow.queue_run_of_paused_workflow() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT FROM walflow.workflows WHERE id = NEW.workflow_id AND status = 'paused') THEN
    NEW.next_attempt_at := 'infinity';
  END IF;
  RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION walflow.queue_run_of_paused_workflow() FROM PUBLIC;
CREATE TRIGGER queue_run_of_paused_workflow BEFORE UPDATE OF status ON walflow.workflow_runs
  FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
  EXECUTE FUNCTION walflow.queue_run_of_paused_workflow();

-- Workflows paused before this migration: their queued runs wait from now on.
UPDATE walflow.workflow_runs SET next_attempt_at = 'infinity'
 WHERE status = 'queued' AND workflow_id IN (SELECT id FROM walflow.workflows WHERE status = 'paused');
