-- A binding holds its role by oid (0038), but a regrole records no dependency: DROP ROLE succeeds and leaves the
-- binding naming an oid no role has. A role created again under that name (a credential rotation, a re-applied
-- infrastructure definition) was then unbound, and an unbound member of walflow_app with no tenant set, or any
-- tenant it sets, reads and writes every tenant. A binding whose role is gone now binds its name again, as a
-- binding written before its role existed does: the new role is bound until the binding is written anew.
--
-- A binding of a role that cannot log in bound nothing: the binding is looked up by the session's login role, not
-- by the roles it is a member of. Such a binding is now refused, saying so.
--
-- A role may match two bindings then: its own, by oid, and a dangling one by its name (a role renamed to the name
-- of one dropped). Its own wins.
CREATE OR REPLACE FUNCTION walflow.bound_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH session_role AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)
  SELECT tenant_id FROM walflow.tenant_roles
   WHERE role_id::oid = (SELECT oid FROM session_role)
      OR role_name = session_user
         AND (role_id IS NULL OR NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid = role_id::oid))
   ORDER BY role_id::oid IS NOT DISTINCT FROM (SELECT oid FROM session_role) DESC
   LIMIT 1
$$;

CREATE OR REPLACE FUNCTION walflow.tenant_roles_resolve() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spelled_otherwise text;
  can_login boolean;
BEGIN
  SELECT oid::regrole, rolcanlogin INTO NEW.role_id, can_login FROM pg_catalog.pg_roles WHERE rolname = NEW.role_name;
  IF NEW.role_id IS NULL THEN
    spelled_otherwise := (SELECT string_agg(quote_literal(rolname), ', ') FROM pg_catalog.pg_roles WHERE lower(rolname) = lower(NEW.role_name));
    RAISE EXCEPTION 'walflow.tenant_roles: no role named %', quote_literal(NEW.role_name)
      USING ERRCODE = 'undefined_object',
            HINT = coalesce('Role names are case-sensitive: ' || spelled_otherwise || ' exists.', 'Create the role first, then bind it.');
  END IF;
  IF NOT can_login THEN
    RAISE EXCEPTION 'walflow.tenant_roles: role % cannot log in, and a binding applies to the login role of a session only, not to the members of a group',
      quote_literal(NEW.role_name)
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Bind each login role that emits for the tenant.';
  END IF;
  RETURN NEW;
END
$$;
