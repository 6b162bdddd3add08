-- A day whose rows already sit in the default partition cannot get a partition of its own (PostgreSQL refuses:
-- the default would hold rows of the new partition's range). Such rows arrive when events are recorded for a day
-- no partition was made for: `walflow repair` after a restore older than a week, say, records today's outbox
-- rows before any process has made today's partition. ensure_event_partitions then failed as a whole, every
-- day, creating no day at all: from then on every event fell into the default partition, and the next day's
-- partition failed in turn. Each day is now created on its own; a day that cannot be is passed over with a
-- warning, and the days after it are made, so the events of the next day have their partition again.
CREATE OR REPLACE FUNCTION walflow.ensure_event_partitions(days_ahead integer DEFAULT 7) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  day date;
  created integer := 0;
  partition_name text;
BEGIN
  FOR day IN
    SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + days_ahead, interval '1 day')::date
  LOOP
    partition_name := 'events_' || to_char(day, 'YYYYMMDD');
    IF to_regclass(format('walflow.%I', partition_name)) IS NULL THEN
      BEGIN
        EXECUTE format(
          'CREATE TABLE walflow.%I PARTITION OF walflow.events FOR VALUES FROM (%L) TO (%L)',
          partition_name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
        created := created + 1;
      EXCEPTION WHEN check_violation THEN
        RAISE WARNING 'walflow: no partition for %: the default partition holds events of that day', day;
      END;
    END IF;
  END LOOP;
  RETURN created;
END
$$;
REVOKE EXECUTE ON FUNCTION walflow.ensure_event_partitions(integer) FROM PUBLIC;
