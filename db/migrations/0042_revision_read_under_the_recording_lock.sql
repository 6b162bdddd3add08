-- A dispatch read the workflows' revision in the statement that inserts its events, whose snapshot is taken
-- before walflow.recording_xid() waits for the recording lock. An apply that changes a workflow's guards holds that
-- lock exclusively while it converts their state (carryGuardStateOver): a batch that waited behind it read the
-- revision from before the apply, and so decided with the old definition against guard state already converted
-- for the new one (a cooldown shortened from a day to a minute was started again for a day).
--
-- The revision is now read by a volatile function that first takes the lock, shared: its query takes a snapshot
-- of its own once the lock is held, so it sees every apply that committed before.
CREATE FUNCTION walflow.recording_revision() RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  current_revision bigint;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(30578, 0);
  SELECT revision INTO current_revision FROM walflow.workflow_revision;
  RETURN current_revision;
END $$;
COMMENT ON FUNCTION walflow.recording_revision() IS
  'The workflows'' revision, read once the sink registration and recording lock (30578, 0) is held shared (until commit).';
REVOKE EXECUTE ON FUNCTION walflow.recording_revision() FROM PUBLIC;
