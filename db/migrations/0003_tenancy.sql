-- Tenant isolation: row-level security on every table holding tenant data, the walflow_app role applications
-- are granted, and a guard on the outbox so that applications cannot forge walflow's causal metadata.
-- Forward-only.
--
-- How an application uses it:
--   CREATE ROLE billing_app LOGIN PASSWORD '…';
--   GRANT walflow_app TO billing_app;
--   -- then, per session (or per transaction with set_config(…, true)):
--   SET walflow.tenant_id = 't1';    -- reads show only t1's rows; writes to the outbox must be for t1
--   SET walflow.actor_id = 'u-42';   -- optional: recorded as metadata.actorId when the event carries none
-- A walflow_app member with no walflow.tenant_id (or an empty one) is system-wide application code: it may
-- emit for any tenant, and reads nothing.
--
-- walflow itself runs as the role that owns these tables (the role that ran the migrations) or as a superuser:
-- the owner gets a permissive policy of its own on each table (FORCE makes row security apply to it too), and
-- superusers bypass row security altogether.

-- The role is cluster-wide while this migration runs once per database: create it only if it is missing. A
-- concurrent migration of another database may create it after the check (duplicate_object), or be creating it
-- right now, in which case CREATE ROLE waits for that transaction and then fails on pg_authid's unique index
-- (unique_violation). Either way the role exists afterwards, as NOLOGIN: applications log in as their own roles.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'walflow_app') THEN
    CREATE ROLE walflow_app NOLOGIN;
    COMMENT ON ROLE walflow_app IS
      'walflow application role: GRANT walflow_app TO <app role>; SET walflow.tenant_id to see and emit one tenant''s '
      'events. May emit (walflow.emit, INSERT into walflow.outbox) and read events, workflows, workflow_runs, '
      'decisions, dead_letters and notifications of its tenant; nothing else.';
  END IF;
EXCEPTION
  WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- True when an outbox row with this id is visible to the calling statement. INSERT … RETURNING (walflow.emit and
-- @walflow/outbox both return the new id) checks the new row against the SELECT policies before storing it, so
-- the applications' SELECT policy on the outbox below admits exactly the row being inserted and never a stored
-- one. SECURITY DEFINER: it looks at every tenant's rows, and says only whether an id is taken. STABLE: it sees
-- the calling statement's snapshot, so a row a scan returns is always found here.
CREATE FUNCTION walflow.outbox_has_row(row_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM walflow.outbox WHERE id = row_id)
$$;

-- Causal metadata (correlation, causation, depth, workflow, run) is walflow's own: the loop guard and the audit
-- trail rely on it. walflow.emit strips it already; this also covers a direct INSERT. Only roles with the outbox
-- owner's privileges keep it (walflow itself, whose actions emit through this table; superusers count as
-- members of every role), so nothing depends on whether a forger was granted walflow_app or INSERT directly.
-- A session's walflow.actor_id becomes metadata.actorId when the row carries none, whoever inserts it.
-- Metadata that is not an object is left alone: walflow parks such a row as a dead letter.
-- search_path is fixed so that a caller's own operators cannot stand in for jsonb's.
CREATE FUNCTION walflow.outbox_guard_metadata() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := nullif(current_setting('walflow.actor_id', true), '');
BEGIN
  IF jsonb_typeof(NEW.metadata) = 'object' THEN
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
      NEW.metadata := NEW.metadata - ARRAY['correlationId', 'causationId', 'depth', 'workflowId', 'runId'];
    END IF;
    IF actor IS NOT NULL AND coalesce(jsonb_typeof(NEW.metadata -> 'actorId'), 'null') = 'null' THEN
      NEW.metadata := jsonb_set(NEW.metadata, '{actorId}', to_jsonb(actor));
    END IF;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER outbox_guard_metadata
  BEFORE INSERT ON walflow.outbox
  FOR EACH ROW EXECUTE FUNCTION walflow.outbox_guard_metadata();

-- Row security on every table with a tenant_id. The owner's policy is for the tables' actual owner (the role
-- that ran the migrations; a superuser running this one needs none). walflow_app reads its tenant's rows only;
-- no tenant (unset or empty) matches no row, not even a row whose tenant_id is ''.
DO $$
DECLARE
  table_name text;
  owner_name name;
BEGIN
  FOREACH table_name IN ARRAY ARRAY['outbox', 'events', 'workflows', 'workflow_runs', 'decisions', 'dead_letters', 'notifications'] LOOP
    SELECT r.rolname INTO STRICT owner_name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
     WHERE c.oid = format('walflow.%I', table_name)::regclass;
    EXECUTE format('ALTER TABLE walflow.%I ENABLE ROW LEVEL SECURITY', table_name);
    EXECUTE format('ALTER TABLE walflow.%I FORCE ROW LEVEL SECURITY', table_name);
    EXECUTE format('CREATE POLICY walflow_owner ON walflow.%I TO %I USING (true) WITH CHECK (true)', table_name, owner_name);
    IF table_name <> 'outbox' THEN
      EXECUTE format(
        'CREATE POLICY tenant_read ON walflow.%I FOR SELECT TO walflow_app '
        'USING (tenant_id = nullif(current_setting(''walflow.tenant_id'', true), ''''))', table_name);
    END IF;
  END LOOP;
END
$$;

-- Emitting: system-wide code (no tenant set) may emit for any tenant; a session with a tenant only for it. This
-- holds for walflow.emit too, which runs with its caller's rights.
CREATE POLICY tenant_emit ON walflow.outbox FOR INSERT TO walflow_app
  WITH CHECK (coalesce(current_setting('walflow.tenant_id', true), '') = ''
              OR tenant_id = current_setting('walflow.tenant_id', true));
-- Reading back the id of the row being inserted (RETURNING id), and nothing else: stored rows are never visible.
CREATE POLICY tenant_returning ON walflow.outbox FOR SELECT TO walflow_app
  USING (NOT walflow.outbox_has_row(id)
         AND (coalesce(current_setting('walflow.tenant_id', true), '') = ''
              OR tenant_id = current_setting('walflow.tenant_id', true)));

-- walflow_app's privileges, exactly: whatever was granted to it in this database before is revoked first.
REVOKE ALL ON ALL TABLES IN SCHEMA walflow FROM walflow_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA walflow FROM walflow_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA walflow FROM walflow_app;
GRANT USAGE ON SCHEMA walflow TO walflow_app;
-- uuid_v7 is the outbox id's default (and what walflow.emit relies on); outbox_has_row is in the outbox policy.
GRANT EXECUTE ON FUNCTION walflow.emit(text, jsonb, text, text, text, jsonb), walflow.uuid_v7(), walflow.outbox_has_row(uuid)
  TO walflow_app;
GRANT INSERT ON walflow.outbox TO walflow_app;
-- Only for INSERT … RETURNING id; the policy above lets no stored row through.
GRANT SELECT (id) ON walflow.outbox TO walflow_app;
-- Through the parent only: events' partitions have no grants, so a partition cannot be read around row security.
GRANT SELECT ON walflow.events, walflow.workflows, walflow.workflow_runs, walflow.decisions, walflow.dead_letters,
  walflow.notifications TO walflow_app;

-- walflow's internal functions are for walflow (the owner) only. Trigger functions need no EXECUTE privilege of
-- the role whose statement fires them. emit and uuid_v7 keep PUBLIC's default: they grant nothing by themselves
-- (emit runs with its caller's rights), and the schema is closed to roles without USAGE.
REVOKE EXECUTE ON FUNCTION walflow.ensure_event_partitions(integer), walflow.bump_workflow_revision(),
  walflow.outbox_guard_metadata(), walflow.outbox_has_row(uuid) FROM PUBLIC;
