-- Measured under `pnpm bench --only latency` with auto_explain: a claim's last statement, which reads the runs
-- it holds with their events by id, took 1.9 ms per call at 1,000 events/s, most of it a sequential scan of
-- workflow_runs (14,000 rows for 9 runs). PL/pgSQL keeps a generic plan for a statement once its first five calls
-- suggest that one will do; the first claims of a session, on a fresh or small queue, made one that scans the
-- table, and it stays until the table's statistics change. claim_runs now runs with enable_seqscan off, as it
-- already ran with enable_sort and jit off: its statements have an index for every row they read, so a plan
-- made on small tables stays right as they grow. Planning those statements for each call instead (EXECUTE) also
-- avoided the scan, but planning the event lookup over the day partitions cost 0.56 ms per claim.
-- Same function as 0021 otherwise.
CREATE OR REPLACE FUNCTION walflow.claim_runs(worker_id text, max_runs integer, lease_ms integer,
                                   calling_out text[] DEFAULT '{}', max_calling_out integer DEFAULT NULL,
                                   hold boolean DEFAULT false)
-- actions_done: the action indexes that succeeded in an earlier attempt, which the run skips; returned here, it
-- saves the worker a statement per batch.
RETURNS TABLE (run walflow.workflow_runs, event walflow.events, actions_done integer[])
LANGUAGE plpgsql VOLATILE
-- Walk the queued runs in order and stop at the first ones free, never sort them all: statistics lag behind a
-- burst of queued runs, and with them the planner would sort the whole queue for every claim. Never JIT-compile
-- the walk either (0018). Never scan a table whole (0023): every statement here finds its rows through an index,
-- and a plan kept from a session's first claims on a small queue would scan a queue that has grown since.
SET enable_sort = off
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
  candidate record;
  claimed_run walflow.workflow_runs;
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

  FOR candidate IN
    SELECT r.id, r.workflow_id, r.concurrency_key, w.concurrency_limit, r.workflow_id::text || '/' || r.concurrency_key AS grp,
           coalesce(EXISTS (SELECT FROM jsonb_array_elements(w.actions) a WHERE a->>'type' = ANY (calling_out)), false) AS calls_out
      FROM walflow.workflow_runs r
      LEFT JOIN walflow.workflows w ON w.id = r.workflow_id
     WHERE r.status = 'queued' AND r.next_attempt_at <= now()
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
     FOR UPDATE OF r SKIP LOCKED
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
     WHERE r.id = candidate.id
    RETURNING r.* INTO claimed_run;
    claimed := claimed + 1;
    claimed_calling_out := claimed_calling_out + candidate.calls_out::int;
    RETURN QUERY SELECT claimed_run, e, walflow.actions_done(claimed_run.id) FROM walflow.events e
                  WHERE e.committed_at = claimed_run.event_committed_at AND e.id = claimed_run.event_id;
  END LOOP;

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

