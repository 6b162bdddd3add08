-- What the checkpoint belongs to: a checkpoint of another server, of another timeline, or beyond the
-- server's WAL (a restored backup) must not be trusted. Filled on first start and by `walflow repair`.
ALTER TABLE walflow.consumer_state
  ADD COLUMN system_identifier text,
  ADD COLUMN timeline_id       integer,
  ADD COLUMN slot_created_lsn  pg_lsn,
  ADD COLUMN repaired_at       timestamptz;
