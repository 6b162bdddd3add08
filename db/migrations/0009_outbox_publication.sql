-- The publication the pgoutput decoder reads: inserts into the outbox, nothing else. `walflow migrate` creates
-- it empty before it creates a pgoutput slot (pgoutput fails on changes from before its publication existed);
-- this adds the outbox in the same transaction as the rest of a fresh schema, so no outbox row can commit
-- unpublished. On a database migrated earlier it is created here, ready for a slot recreated with pgoutput.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'walflow_outbox') THEN
    CREATE PUBLICATION walflow_outbox WITH (publish = 'insert');
  END IF;
  IF NOT EXISTS (SELECT FROM pg_publication_tables WHERE pubname = 'walflow_outbox' AND schemaname = 'walflow' AND tablename = 'outbox') THEN
    ALTER PUBLICATION walflow_outbox ADD TABLE walflow.outbox;
  END IF;
END
$$;
