-- Only a sink reads the event log in recording order (0010), yet every recorded event paid for its entry in
-- events_recorded_order: ~6 % of a dispatch's time and 100 bytes of WAL per event, measured side by side in one
-- process. The dispatcher now gives an event its recorded_xid only while some sink has a cursor; an event without
-- one has no entry (the index is partial) and no place in any sink's order.
--
-- A sink's order must still never miss an event recorded after the sink began, so registering a sink and
-- deciding whether a batch needs recorded_xid exclude each other: the dispatcher holds this lock shared from the
-- decision to its commit, a sink takes it exclusively while it creates its cursor. A sink's cursor therefore
-- appears between two recording transactions, never during one: every batch that committed before it recorded
-- no recorded_xid and lies before the sink's start, every batch after it sees the cursor.
--
-- VOLATILE, so that its query takes a snapshot of its own after the lock is granted: the calling statement's
-- snapshot may predate the cursor whose creation it just waited for.
CREATE FUNCTION walflow.recording_xid() RETURNS xid8
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(30578, 0);
  IF EXISTS (SELECT FROM walflow.sink_cursors) THEN
    RETURN pg_current_xact_id();
  END IF;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION walflow.recording_xid() IS
  'The recording transaction''s id while some sink has a cursor, else NULL; holds the sink registration lock (30578, 0) shared until commit.';

REVOKE EXECUTE ON FUNCTION walflow.recording_xid() FROM PUBLIC;
