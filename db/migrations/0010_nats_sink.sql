-- The NATS JetStream sink follows walflow.events with a cursor of its own, and a cursor may only move past rows
-- once no row can ever be inserted before it. None of the event log's orders gives that:
--  * (committed_at, id) is the application's commit time, which `walflow repair` records long after later
--    events (outbox rows the lost slot missed, stamped with their creation time); WAL commit timestamps are
--    also taken just before the commit record is written, so they can disagree with commit order.
--  * (commit_lsn, tx_position) restarts for every page `walflow repair` records (all its rows carry the new
--    slot's LSN, positions counting from 0 again), and a dispatcher that lost its leader lock mid-batch may
--    still commit after its successor.
-- recorded_xid is the 64-bit id of the transaction that recorded the row (pg_current_xact_id(): the top-level
-- id, also inside savepoints; it never wraps). The sink reads only rows whose recorded_xid is below the oldest
-- transaction id still running (pg_snapshot_xmin(pg_current_snapshot())): their transactions are over, and any
-- row inserted afterwards comes from a transaction whose id is at least that horizon. So a cursor on
-- (recorded_xid, commit_lsn, tx_position, id) never skips a row, whoever inserts concurrently. Since one
-- dispatcher records at a time (the leader lock), transaction ids follow recording order, and within one
-- transaction (commit_lsn, tx_position) is commit order: the cursor walks the log in commit order.
-- A long-running writing transaction anywhere on the server holds the horizon back: that delays the sink, it
-- never makes it skip.
-- Added without a default first, so existing rows keep NULL and no partition is rewritten; the sink starts at
-- the end of the log it finds (older events can be re-published with `walflow replay --to-sink`).
ALTER TABLE walflow.events ADD COLUMN recorded_xid xid8;
ALTER TABLE walflow.events ALTER COLUMN recorded_xid SET DEFAULT pg_current_xact_id();
CREATE INDEX events_recorded_order ON walflow.events (recorded_xid, commit_lsn, tx_position, id) WHERE recorded_xid IS NOT NULL;

-- Where each sink (named after its stream) stands: the last event JetStream acknowledged. Saved after the
-- acknowledgements, in the transaction that holds the sink's advisory lock, so one process publishes at a time.
CREATE TABLE walflow.sink_cursors (
  sink         text        PRIMARY KEY,
  recorded_xid xid8        NOT NULL,
  commit_lsn   pg_lsn      NOT NULL,
  tx_position  integer     NOT NULL,
  event_id     uuid        NOT NULL,
  published    bigint      NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
