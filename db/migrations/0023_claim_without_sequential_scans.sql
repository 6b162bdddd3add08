-- Measured under `pnpm bench --only latency` with auto_explain: a claim's last statement, which reads the runs
-- it holds with their events by id, took 1.9 ms per call at 1,000 events/s, most of it a sequential scan of
-- workflow_runs (14,000 rows for 9 runs). PL/pgSQL keeps a generic plan for a statement once its first five calls
-- suggest that one will do; the first claims of a session, on a fresh or small queue, made one that scans the
-- table, and it stays until the table's statistics change. claim_runs now runs with enable_seqscan off, as it
-- already ran with enable_sort and jit off: its statements have an index for every row they read, so a plan
-- made on small tables stays right as they grow. Planning those statements for each call instead (EXECUTE) also
-- avoided the scan, but planning the event lookup over the day partitions cost 0.56 ms per claim.
ALTER FUNCTION walflow.claim_runs(text, integer, integer, text[], integer, boolean) SET enable_seqscan = off;
