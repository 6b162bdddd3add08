-- A role bound to a tenant: its sessions see and emit that tenant's rows only, whatever they set. Until now a
-- session's tenant was its own walflow.tenant_id, which any session may set: a tenant's application could read
-- another tenant's events by setting theirs, or emit for any tenant by setting none. Roles listed here can do
-- neither. Unlisted roles keep the session setting (one application serving every tenant scopes itself with it).
-- The binding follows the session's login role (session_user), so SET ROLE cannot step around it.
--
--   INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES ('billing_app', 't1');
CREATE TABLE walflow.tenant_roles (
  role_name name PRIMARY KEY,
  tenant_id text NOT NULL CHECK (tenant_id <> '')
);
COMMENT ON TABLE walflow.tenant_roles IS
  'Login roles bound to one tenant: their sessions see and emit only its rows, whatever walflow.tenant_id they set.';

-- The login role's tenant, if it is bound. SECURITY DEFINER: applications cannot read the bindings themselves.
-- Every name in it is qualified, the operator too, instead of a SET search_path: the outbox's default calls it
-- for each row a session without walflow.tenant_id inserts, and a SET clause costs each call a settings
-- save and restore (200,000 rows: 0.54–0.59 s with it qualified, 0.71–0.84 s with SET, 0.22–0.23 s without
-- the function).
CREATE FUNCTION walflow.bound_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER AS $$
  SELECT tenant_id FROM walflow.tenant_roles WHERE role_name OPERATOR(pg_catalog.=) session_user
$$;

-- The session's tenant for row security: the bound one, else walflow.tenant_id; null is system-wide. A bound
-- session that asks for another tenant is refused outright rather than shown its own rows under another name.
CREATE FUNCTION walflow.session_tenant() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  requested text := nullif(current_setting('walflow.tenant_id', true), '');
  bound text := walflow.bound_tenant();
BEGIN
  IF bound IS NULL THEN
    RETURN requested;
  END IF;
  IF requested IS NOT NULL AND requested <> bound THEN
    RAISE EXCEPTION 'role % is bound to tenant % (walflow.tenant_roles): walflow.tenant_id % is not its tenant', session_user, bound, requested
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN bound;
END
$$;

-- Each policy reads the session's tenant once per statement (a sub-select), not once per row.
DO $$
DECLARE
  table_name text;
BEGIN
  FOREACH table_name IN ARRAY ARRAY['events', 'workflows', 'workflow_runs', 'decision_records', 'dead_letters', 'notifications'] LOOP
    EXECUTE format('ALTER POLICY tenant_read ON walflow.%I USING (tenant_id = (SELECT walflow.session_tenant()))', table_name);
  END LOOP;
END
$$;
ALTER POLICY tenant_emit ON walflow.outbox
  WITH CHECK ((SELECT walflow.session_tenant()) IS NULL OR tenant_id = (SELECT walflow.session_tenant()));
ALTER POLICY tenant_returning ON walflow.outbox
  USING (NOT walflow.outbox_has_row(id)
         AND ((SELECT walflow.session_tenant()) IS NULL OR tenant_id = (SELECT walflow.session_tenant())));

-- A bound session that names no tenant emits for its own. The setting is read first: sessions that set it (and
-- walflow's own inserts, which name the tenant) never look the binding up.
ALTER TABLE walflow.outbox
  ALTER COLUMN tenant_id SET DEFAULT coalesce(nullif(current_setting('walflow.tenant_id', true), ''), walflow.bound_tenant(), 'default');

CREATE OR REPLACE FUNCTION walflow.emit(
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
  VALUES (coalesce($5, nullif(current_setting('walflow.tenant_id', true), ''), walflow.bound_tenant(), 'default'), $1, $3, $4, $2,
          coalesce($6, '{}') - ARRAY['correlationId', 'causationId', 'depth', 'workflowId', 'runId'])
  RETURNING o.id INTO new_id;
  RETURN new_id;
END
$$;

-- Both functions keep PUBLIC's EXECUTE: they say only what the caller's own session may know, and the outbox's
-- column default calls one for whoever inserts.
