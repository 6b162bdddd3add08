-- walflow's schema: the outbox applications write to, the event log, workflows, their decisions and runs.
-- Forward-only: never edit this file once it has landed; add a new numbered file instead.

-- Time-ordered UUIDs (version 7): ids sort by creation time, which keeps B-tree inserts local and gives the
-- outbox a natural order for repair. PostgreSQL 18 has uuidv7(); this works from 13 on.
CREATE FUNCTION walflow.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- Insert-only from the application's side. The dispatcher deletes the rows it records in the same transaction,
-- so this table holds exactly the committed events not yet recorded.
CREATE TABLE walflow.outbox (
  id             uuid        PRIMARY KEY DEFAULT walflow.uuid_v7(),
  tenant_id      text        NOT NULL DEFAULT 'default',
  event_type     text        NOT NULL
                 CHECK (char_length(event_type) <= 200 AND event_type ~ '^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$'),
  aggregate_type text,
  aggregate_id   text,
  payload        jsonb       NOT NULL,
  metadata       jsonb       NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created_at ON walflow.outbox (created_at);

-- The event log and replay source. Partitioned by day of commit so retention drops whole partitions; the key
-- includes committed_at, which the WAL fixes for an event, so a redelivered event collides with itself.
CREATE TABLE walflow.events (
  id             uuid        NOT NULL,
  event_type     text        NOT NULL,
  tenant_id      text        NOT NULL DEFAULT 'default',
  aggregate_type text,
  aggregate_id   text,
  payload        jsonb       NOT NULL,
  metadata       jsonb       NOT NULL DEFAULT '{}',
  committed_at   timestamptz NOT NULL,
  commit_lsn     pg_lsn      NOT NULL,
  tx_position    integer     NOT NULL,
  xid            bigint      NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now(),
  recovered      boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (committed_at, id)
) PARTITION BY RANGE (committed_at);
CREATE TABLE walflow.events_default PARTITION OF walflow.events DEFAULT;
CREATE INDEX events_id ON walflow.events (id);
CREATE INDEX events_type_time ON walflow.events (tenant_id, event_type, committed_at);
CREATE INDEX events_aggregate ON walflow.events (aggregate_type, aggregate_id, committed_at);

-- Creates the daily partitions (UTC) from yesterday to days_ahead days from now; idempotent.
CREATE FUNCTION walflow.ensure_event_partitions(days_ahead integer DEFAULT 7) RETURNS integer
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
      EXECUTE format(
        'CREATE TABLE walflow.%I PARTITION OF walflow.events FOR VALUES FROM (%L) TO (%L)',
        partition_name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END
$$;
SELECT walflow.ensure_event_partitions();

CREATE TABLE walflow.workflows (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     text        NOT NULL DEFAULT 'default',
  name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'disabled')),
  trigger_event text        NOT NULL,
  condition     text,
  cooldown      jsonb,
  rate_limits   jsonb       NOT NULL DEFAULT '[]',
  actions       jsonb       NOT NULL,
  -- The document as applied, so `workflows list` and explain can show exactly what the author wrote.
  definition    jsonb       NOT NULL,
  version       integer     NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name)
);
CREATE INDEX workflows_trigger ON walflow.workflows (tenant_id, trigger_event);

-- One number that changes whenever any workflow does: the dispatcher reads it in each batch's transaction
-- and reloads its in-memory index only when it moved.
CREATE TABLE walflow.workflow_revision (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  revision  bigint  NOT NULL
);
INSERT INTO walflow.workflow_revision (singleton, revision) VALUES (true, 0);

CREATE FUNCTION walflow.bump_workflow_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE walflow.workflow_revision SET revision = revision + 1;
  RETURN NULL;
END
$$;
CREATE TRIGGER workflows_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON walflow.workflows
  FOR EACH STATEMENT EXECUTE FUNCTION walflow.bump_workflow_revision();

-- Why each (event, workflow) pair did or did not fire. Replays decide again under their own replay_id.
CREATE TABLE walflow.decisions (
  id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workflow_id        uuid        NOT NULL REFERENCES walflow.workflows (id),
  workflow_version   integer     NOT NULL,
  tenant_id          text        NOT NULL DEFAULT 'default',
  event_id           uuid        NOT NULL,
  event_committed_at timestamptz NOT NULL,
  replay_id          text,
  outcome            text        NOT NULL CHECK (outcome IN
                       ('fired', 'condition_false', 'condition_error', 'cooldown', 'rate_limited', 'loop_blocked', 'inactive')),
  reason             text        NOT NULL,
  detail             jsonb       NOT NULL DEFAULT '{}',
  run_id             uuid,
  decided_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE NULLS NOT DISTINCT (workflow_id, event_id, replay_id)
);
CREATE INDEX decisions_event ON walflow.decisions (event_id);

CREATE TABLE walflow.workflow_runs (
  id                 uuid        PRIMARY KEY DEFAULT walflow.uuid_v7(),
  workflow_id        uuid        NOT NULL REFERENCES walflow.workflows (id),
  workflow_version   integer     NOT NULL,
  tenant_id          text        NOT NULL DEFAULT 'default',
  event_id           uuid        NOT NULL,
  event_committed_at timestamptz NOT NULL,
  event_type         text        NOT NULL,
  aggregate_type     text,
  aggregate_id       text,
  -- The event's place in commit order, so runs of one workflow for one aggregate can execute in that order.
  commit_lsn         pg_lsn      NOT NULL,
  tx_position        integer     NOT NULL,
  replay_id          text,
  status             text        NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
  attempts           integer     NOT NULL DEFAULT 0,
  max_attempts       integer     NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  next_attempt_at    timestamptz NOT NULL DEFAULT now(),
  locked_by          text,
  locked_until       timestamptz,
  last_error         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz,
  finished_at        timestamptz,
  UNIQUE NULLS NOT DISTINCT (workflow_id, event_id, replay_id)
);
CREATE INDEX workflow_runs_queued ON walflow.workflow_runs (next_attempt_at) WHERE status = 'queued';
CREATE INDEX workflow_runs_leased ON walflow.workflow_runs (locked_until) WHERE status = 'running';
CREATE INDEX workflow_runs_event ON walflow.workflow_runs (event_id);

-- Outbox rows that cannot become events (unknown type, invalid payload), with the raw row, so nothing is lost.
CREATE TABLE walflow.dead_letters (
  id           uuid        PRIMARY KEY DEFAULT walflow.uuid_v7(),
  outbox_id    uuid        UNIQUE,
  tenant_id    text        NOT NULL DEFAULT 'default',
  event_type   text,
  code         text        NOT NULL,
  reason       text        NOT NULL,
  raw          jsonb       NOT NULL,
  commit_lsn   pg_lsn,
  committed_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  resolved_at  timestamptz,
  resolution   text
);

-- One row per replication slot: what health and lag read, advanced in the dispatcher's transactions.
CREATE TABLE walflow.consumer_state (
  slot_name       text        PRIMARY KEY,
  plugin          text        NOT NULL,
  slot_created_at timestamptz NOT NULL DEFAULT now(),
  checkpoint_lsn  pg_lsn,
  last_commit_at  timestamptz,
  leader_id       text,
  leader_since    timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The SQL way to emit an event, for writers that are not TypeScript (triggers, psql, other languages).
-- Causal metadata is walflow's own: callers may set actorId and their own keys, never depth or causation.
CREATE FUNCTION walflow.emit(
  event_type     text,
  payload        jsonb,
  aggregate_type text  DEFAULT NULL,
  aggregate_id   text  DEFAULT NULL,
  tenant_id      text  DEFAULT NULL,
  metadata       jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  new_id uuid;
BEGIN
  IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
    RAISE EXCEPTION 'walflow.emit: payload of % must be a JSON object, got %', $1, coalesce(jsonb_typeof(payload), 'null')
      USING ERRCODE = '22023';
  END IF;
  IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
    RAISE EXCEPTION 'walflow.emit: metadata must be a JSON object' USING ERRCODE = '22023';
  END IF;
  INSERT INTO walflow.outbox AS o (tenant_id, event_type, aggregate_type, aggregate_id, payload, metadata)
  VALUES (coalesce($5, 'default'), $1, $3, $4, $2,
          coalesce($6, '{}') - ARRAY['correlationId', 'causationId', 'depth', 'workflowId', 'runId'])
  RETURNING o.id INTO new_id;
  RETURN new_id;
END
$$;
