-- Every process that runs the consumer, the leader and its standbys, makes the coming days' partitions, and so
-- does `walflow repair`. Two that found a day missing at once both created it: the second waited for the first's
-- lock on the event log, then failed with duplicate_table (or, as the catalog rows collide, unique_violation),
-- which rolled back every day it had made, and failed the repair. A day another session has just made is now
-- passed over, as one that exists already is.
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
      EXCEPTION
        WHEN check_violation THEN
          RAISE WARNING 'walflow: no partition for %: the default partition holds events of that day', day;
        WHEN duplicate_table OR unique_violation THEN
          NULL;
      END;
    END IF;
  END LOOP;
  RETURN created;
END
$$;
REVOKE EXECUTE ON FUNCTION walflow.ensure_event_partitions(integer) FROM PUBLIC;
