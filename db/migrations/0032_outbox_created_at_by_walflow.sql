-- Applications write every column of the outbox but created_at. walflow reads it as the moment the row was
-- written: the lag /health reports, rows reported older than the slot, and the commit time `walflow repair`
-- gives the events it recovers (their day of the log, their cooldowns and rate-limit windows). An application
-- that set it to 1970, or to next year, skewed all of them; now the column default always writes it.
REVOKE INSERT ON walflow.outbox FROM walflow_app;
GRANT INSERT (id, tenant_id, event_type, aggregate_type, aggregate_id, payload, metadata) ON walflow.outbox TO walflow_app;
