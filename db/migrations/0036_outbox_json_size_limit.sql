-- An event's payload and metadata are bounded, 16 MiB each as PostgreSQL stores them. wal2json writes each outbox
-- insert as one JSON message, which the consumer reads as one JavaScript string of at most 2^29 characters: a
-- payload of a few hundred megabytes made a message no consumer could ever read, and stopped the stream for
-- every tenant at each redelivery. The text of a jsonb value is at most about six times its stored size (a
-- control character is one byte stored and \u0001 written), and wal2json escapes that text once more, so 16 MiB
-- keeps every message far inside the limit, and far beyond any event. pg_column_size reads the value's header:
-- the check costs an insert nothing it would notice.
--
-- NOT VALID, as in 0028: rows already in the outbox are not scanned under the lock that adding it takes.
ALTER TABLE walflow.outbox
  ADD CONSTRAINT outbox_payload_size CHECK (pg_column_size(payload) <= 16777216) NOT VALID,
  ADD CONSTRAINT outbox_metadata_size CHECK (pg_column_size(metadata) <= 16777216) NOT VALID;
