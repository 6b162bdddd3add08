-- The loop guard looks for an earlier run of a workflow in an event's causal chain (its correlation id). Every
-- run entered workflow_runs_chain, but most runs are of events an application wrote, whose chain is the event
-- itself (correlation_id = event_id): the unique key (event_id, workflow_id, replay_id) already finds those.
-- Only runs of caused events keep an entry in the chain index now; the guard reads the two places. A queued run
-- writes ~140 bytes of WAL fewer (`pnpm bench --only dispatch`), which the walsender, reading every byte of
-- WAL, reads no more. Built under the table's lock, before the old index goes, so the guard always has one.
CREATE INDEX workflow_runs_caused_chain ON walflow.workflow_runs (workflow_id, correlation_id, aggregate_type, aggregate_id)
  WHERE correlation_id <> event_id;
DROP INDEX walflow.workflow_runs_chain;
