-- One process publishes for each JetStream sink. That was the advisory lock (30579, hashtext(sink)), which any role
-- may take: an application's login holding it (SELECT pg_advisory_lock(30579, hashtext('nats:WALFLOW'))) kept every
-- walflow process in standby, nothing published, and prune kept every event recorded since. A sink's publisher now
-- holds the lock of its row here, FOR UPDATE until its round commits, which only roles with rights on this table
-- may take (walflow's own; not walflow_app). A table of its own, not walflow.sink_cursors: a row lock takes ROW
-- SHARE on its table, which the registration of another sink (EXCLUSIVE) waits for, and dispatch behind that.
-- Processes of an earlier version take the advisory key still: upgrade every one with the migration (two publishers
-- at once store nothing twice, as JetStream drops repeats by Nats-Msg-Id, but take turns round by round).
CREATE TABLE walflow.sink_publishers (
  sink text PRIMARY KEY
);
COMMENT ON TABLE walflow.sink_publishers IS
  'One row per JetStream sink; its publisher holds the row FOR UPDATE for each round (lock only, no data).';
