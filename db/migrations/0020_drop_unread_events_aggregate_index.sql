-- events_aggregate (aggregate_type, aggregate_id, committed_at) came with the first schema for lookups by
-- aggregate that nothing in walflow makes: explain, the console, `walflow events`, replay and the sink read
-- events by id, by commit time (with tenant and type) and by recording order. Every recorded event still paid
-- for its entry. An installation that queries its event log by aggregate can create the index again (with
-- CREATE INDEX CONCURRENTLY on each partition); walflow's own statements do not need it.
DROP INDEX walflow.events_aggregate;
