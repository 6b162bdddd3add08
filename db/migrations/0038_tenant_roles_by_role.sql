-- A binding named its role as text, compared with session_user: a typo, another case ('BillingApp' for the role
-- billingapp) or a later ALTER ROLE ... RENAME left the role unbound without a word, and an unbound member of
-- walflow_app with no tenant set is system-wide. A binding now names a role that exists, checked as it is written
-- (an unknown name is refused, naming any role spelled the same in another case), and holds on to the role
-- itself: a renamed role stays bound. role_name keeps the name the binding was written with. The column is a
-- regrole, not a bare oid: a dump writes it as the role's name and a restore looks the name up again (and fails
-- where the role is missing), where an oid would bind whichever role has that number in the other cluster.
ALTER TABLE walflow.tenant_roles ADD COLUMN role_id regrole UNIQUE;
UPDATE walflow.tenant_roles t SET role_id = r.oid::regrole FROM pg_catalog.pg_roles r WHERE r.rolname = t.role_name;
COMMENT ON COLUMN walflow.tenant_roles.role_id IS
  'The bound role, set from role_name when the binding is written; it follows the role through renames.';

DO $$
DECLARE
  unknown text := (SELECT string_agg(quote_literal(role_name), ', ') FROM walflow.tenant_roles WHERE role_id IS NULL);
BEGIN
  -- Kept as they were (bound by name, should such a role be created): refusing them would stop the upgrade.
  IF unknown IS NOT NULL THEN
    RAISE WARNING 'walflow.tenant_roles binds roles that do not exist: %; they bind nothing until a role of that exact name is created', unknown;
  END IF;
END
$$;

CREATE FUNCTION walflow.tenant_roles_resolve() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spelled_otherwise text;
BEGIN
  SELECT oid::regrole INTO NEW.role_id FROM pg_catalog.pg_roles WHERE rolname = NEW.role_name;
  IF NEW.role_id IS NULL THEN
    spelled_otherwise := (SELECT string_agg(quote_literal(rolname), ', ') FROM pg_catalog.pg_roles WHERE lower(rolname) = lower(NEW.role_name));
    RAISE EXCEPTION 'walflow.tenant_roles: no role named %', quote_literal(NEW.role_name)
      USING ERRCODE = 'undefined_object',
            HINT = coalesce('Role names are case-sensitive: ' || spelled_otherwise || ' exists.', 'Create the role first, then bind it.');
  END IF;
  RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION walflow.tenant_roles_resolve() FROM PUBLIC;
-- Not on every update: after a rename, role_name is the old name, which another role may have taken since.
CREATE TRIGGER tenant_roles_resolve BEFORE INSERT OR UPDATE OF role_name ON walflow.tenant_roles
  FOR EACH ROW EXECUTE FUNCTION walflow.tenant_roles_resolve();

CREATE OR REPLACE FUNCTION walflow.bound_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT tenant_id FROM walflow.tenant_roles
   WHERE role_id::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)
      OR role_id IS NULL AND role_name = session_user
$$;
