-- A role bound to a tenant: its sessions see and emit that tenant's rows only, whatever they set. Until now a
-- session's tenant was its own walflow.tenant_id, which any session may set: a tenant's application could read
-- another tenant's events by setting theirs, or emit for any tenant by setting none. Roles listed here can do
-- neither. Unlisted roles keep the session setting (one application serving every tenant scopes itself with it).
-- The binding follows the session's login role (session_user), so SET ROLE cannot step around it.
--
--   INSERT INTO walflow.tenant_roles (role_name, tenant_id) VALUES ('billing_app', 't1');
--   ALTER ROLE billing_app SET walflow.tenant_id = 't1';  -- so that its events need not name the tenant
--
-- The outbox's tenant default stays the session setting. Looking the binding up there cost every row inserted
-- without a tenant a function call: in two alternated runs of `pnpm bench --only write-overhead`, emit()'s ratio
-- with walflow stopped fell from 0.57-0.61x to 0.45-0.51x. A bound role's row that names no tenant is refused by
-- the policy unless the setting names its tenant, which ALTER ROLE ... SET makes the default of every session.
CREATE TABLE walflow.tenant_roles (
  role_name name PRIMARY KEY,
  tenant_id text NOT NULL CHECK (tenant_id <> '')
);
COMMENT ON TABLE walflow.tenant_roles IS
  'Login roles bound to one tenant: their sessions see and emit only its rows, whatever walflow.tenant_id they set.';

-- The login role's tenant, if it is bound. SECURITY DEFINER: applications cannot read the bindings themselves.
CREATE FUNCTION walflow.bound_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT tenant_id FROM walflow.tenant_roles WHERE role_name = session_user
$$;

-- Both functions keep PUBLIC's EXECUTE: they say only what the caller's own session may know.

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
