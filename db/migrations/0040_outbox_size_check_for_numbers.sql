-- 0036 let a value stored in at most 32 MiB / 6 through without writing it out, on the reasoning that jsonb text is
-- at most six times its stored size. Numbers break that: a numeric keeps only its significant digits and writes out
-- every zero of its weight and scale, so 1e131071 with a scale of 16,383, sixteen bytes in a jsonb array, is
-- 147,458 characters of text, some 9,200 times its size. Any role that may emit could write a payload of a few
-- megabytes that wal2json makes into a message of hundreds of millions of characters: more than a JavaScript
-- string can hold, which stopped the stream for every tenant at each redelivery.
--
-- Only a value stored in at most 2,048 bytes is now within the bound unread (2,048 × 9,217 < 32 MiB); a larger
-- one is written out, which costs its insert a few microseconds a kilobyte.
ALTER TABLE walflow.outbox
  DROP CONSTRAINT outbox_payload_size,
  DROP CONSTRAINT outbox_metadata_size,
  ADD CONSTRAINT outbox_payload_size CHECK (
    CASE WHEN pg_column_compression(payload) IS NULL AND pg_column_size(payload) <= 2048 THEN true
         ELSE octet_length(payload::text) <= 33554432 END) NOT VALID,
  ADD CONSTRAINT outbox_metadata_size CHECK (
    CASE WHEN pg_column_compression(metadata) IS NULL AND pg_column_size(metadata) <= 2048 THEN true
         ELSE octet_length(metadata::text) <= 33554432 END) NOT VALID;
