-- The loop guard looks for an earlier run of a workflow in an event's causal chain (its correlation id). Every
-- run entered workflow_runs_chain, but most runs are of events an application wrote, whose chain is the event
-- itself (correlation_id = event_id): the unique key (event_id, workflow_id, replay_id) already finds those.
-- Only the other runs (of caused events) keep an entry in the chain index now; the guard reads the two places. A queued run
-- writes ~120 bytes of WAL fewer (`pnpm bench --only dispatch`: 1,365 -> 1,244 bytes an event), which the
-- walsender, reading every byte of WAL, reads no more. CREATE INDEX holds a lock that makes run inserts and
-- updates wait while it reads workflow_runs whole: on a large history, migrate while the writes are quiet.
-- A walflow process older than this migration reads the chain by correlation_id alone, which the new index
-- cannot answer: upgrade the processes with the migration, not after it.
CREATE INDEX workflow_runs_caused_chain ON walflow.workflow_runs (workflow_id, correlation_id, aggregate_type, aggregate_id)
  WHERE correlation_id <> event_id;
DROP INDEX walflow.workflow_runs_chain;
