-- An event's payload and metadata are bounded. wal2json writes each outbox insert as one JSON message, which the
-- consumer reads as one JavaScript string of at most 2^29 characters: a payload of a few hundred megabytes made a
-- message no consumer could ever read, and stopped the stream for every tenant at each redelivery. What grows the
-- message is the value's text, which wal2json escapes once more; so the bound is on the text, 32 MiB each (emit()
-- refuses more than 16 MiB of compact JSON, which PostgreSQL's text, with its spaces, keeps within 32 MiB).
--
-- Writing a value out as text costs an insert time it would notice: only a value that might be that long is
-- written out. Uncompressed, a jsonb value's text is at most six times its stored size (a control character is
-- one byte stored and \u0001 written), so one stored in at most 32 MiB / 6 is within the bound unread; a
-- compressed one (copied from another table, say) says nothing of its text, and is written out.
--
-- NOT VALID, as in 0028: rows already in the outbox are not scanned under the lock that adding it takes.
ALTER TABLE walflow.outbox
  ADD CONSTRAINT outbox_payload_size CHECK (
    CASE WHEN pg_column_compression(payload) IS NULL AND pg_column_size(payload) <= 5592405 THEN true
         ELSE octet_length(payload::text) <= 33554432 END) NOT VALID,
  ADD CONSTRAINT outbox_metadata_size CHECK (
    CASE WHEN pg_column_compression(metadata) IS NULL AND pg_column_size(metadata) <= 5592405 THEN true
         ELSE octet_length(metadata::text) <= 33554432 END) NOT VALID;
