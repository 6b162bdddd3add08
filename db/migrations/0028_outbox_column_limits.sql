-- The outbox refuses what the event log cannot index, from SQL writers as emit() refuses it. A tenant or an
-- aggregate of about 2.7 kB went into the outbox and failed only at dispatch, after its transaction committed,
-- on a btree index of walflow.events ("index row size exceeds maximum"), where the event could only be parked; an
-- empty tenant named no tenant at all. 1,000 bytes each (EVENT_IDENTIFIER_MAX_BYTES) keep the indexed pairs,
-- (tenant_id, event_type, committed_at) and (aggregate_type, aggregate_id, committed_at), within an index row.
-- event_type has had its own limit since 0001 (at most 200 characters of a pattern that needs a letter).
--
-- NOT VALID: rows already in the outbox are not scanned. Adding a constraint locks the table against every
-- writer, and a scan would hold that lock as long as the backlog is long, for rows the dispatcher records or
-- parks as before. New rows are checked all the same.
ALTER TABLE walflow.outbox
  ADD CONSTRAINT outbox_tenant_id_limit CHECK (tenant_id <> '' AND octet_length(tenant_id) <= 1000) NOT VALID,
  ADD CONSTRAINT outbox_aggregate_type_limit CHECK (octet_length(aggregate_type) <= 1000) NOT VALID,
  ADD CONSTRAINT outbox_aggregate_id_limit CHECK (octet_length(aggregate_id) <= 1000) NOT VALID;
