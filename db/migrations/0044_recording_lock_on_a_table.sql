-- The recording lock, which every dispatch holds shared and a sink's registration and an apply changing a
-- workflow's guards take exclusively, was the advisory lock (30578, 0): any role may take any advisory lock, so an
-- application's login holding it (SELECT pg_advisory_lock(30578, 0)) stopped dispatch for every tenant. It is now
-- a lock on walflow.sink_cursors, which only roles with rights on that table may take (walflow's own; not
-- walflow_app). ROW SHARE and EXCLUSIVE conflict as the advisory lock's shared and exclusive modes did; ROW SHARE
-- conflicts with nothing else a session does to the table. EXCLUSIVE also waits for a vacuum of the table (an
-- autovacuum gives way after deadlock_timeout) and holds up a sink's cursor save until the holder commits.
-- Processes and CLIs of an earlier version take the advisory key still: upgrade every one with the migration.
CREATE OR REPLACE FUNCTION walflow.recording_xid() RETURNS xid8
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  LOCK TABLE walflow.sink_cursors IN ROW SHARE MODE;
  IF EXISTS (SELECT FROM walflow.sink_cursors) THEN
    RETURN pg_current_xact_id();
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION walflow.recording_xid() IS
  'The recording transaction''s id while some sink has a cursor, else NULL; holds the recording lock (walflow.sink_cursors in ROW SHARE mode) until commit.';

CREATE OR REPLACE FUNCTION walflow.recording_revision() RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  current_revision bigint;
BEGIN
  LOCK TABLE walflow.sink_cursors IN ROW SHARE MODE;
  SELECT revision INTO current_revision FROM walflow.workflow_revision;
  RETURN current_revision;
END $$;
COMMENT ON FUNCTION walflow.recording_revision() IS
  'The workflows'' revision, read once the recording lock (walflow.sink_cursors in ROW SHARE mode) is held (until commit).';
