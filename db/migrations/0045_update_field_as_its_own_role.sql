-- update_field writes as a role of its own. The action updated an application table as walflow's role: the table's
-- triggers, row-security policies and other code on it ran with walflow's privileges (a superuser's, where walflow
-- connects as one), so whoever owned an allow-listed table could run code as walflow. walflow.update_field() runs
-- the UPDATE as walflow_update_field, a role that cannot log in and holds only what operators grant it on the
-- tables they allow. A SECURITY DEFINER function, not SET ROLE: code called from a trigger may RESET ROLE, and
-- PostgreSQL refuses SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION inside a security-definer function.
--
-- Operators grant the role what update_field needs of each allowed table: USAGE on its schema, SELECT on the
-- columns it reads (the key, the tenant column, an incremented column) and UPDATE on the column it writes, say
-- `GRANT USAGE ON SCHEMA crm TO walflow_update_field; GRANT SELECT, UPDATE ON crm.agents TO walflow_update_field`.
-- Created only if missing, as 0003 and 0012 do: roles are cluster-wide and this runs once per database.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'walflow_update_field') THEN
    CREATE ROLE walflow_update_field NOLOGIN;
    COMMENT ON ROLE walflow_update_field IS
      'walflow''s update_field action writes as this role, granted UPDATE on the allowed application columns only; never logs in.';
  END IF;
EXCEPTION
  WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The role walflow migrates as (and runs as) hands the function over to walflow_update_field, which takes being
-- able to act as it.
DO $$
BEGIN
  IF NOT pg_catalog.pg_has_role(current_user, 'walflow_update_field', 'MEMBER') THEN
    EXECUTE pg_catalog.format('GRANT walflow_update_field TO %I', current_user);
  END IF;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'walflow_update_field exists and % may not act as it', current_user
      USING HINT = pg_catalog.format('run GRANT walflow_update_field TO %I as a superuser, then walflow migrate again', current_user);
END
$$;

-- One row of `schema.table`, found by its key (and, when given, its tenant column), gets `target_column` set to
-- `new_value` or increased by `increment` (a null column counts as 0). Values arrive as text and are cast to their
-- columns' types (format_type names a type outside pg_catalog with its schema), as an untyped parameter was;
-- identifiers are quoted. Returns how many rows changed.
CREATE FUNCTION walflow.update_field(
  target_schema name, target_table name, target_column name,
  key_column name, key_value text,
  tenant_column name, tenant text,
  new_value text, increment text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  target regclass := pg_catalog.to_regclass(pg_catalog.format('%I.%I', target_schema, target_table));
  target_type text;
  key_type text;
  tenant_type text;
  matches text;
  statement text;
  updated bigint;
BEGIN
  IF target IS NULL THEN
    RAISE EXCEPTION 'relation %.% does not exist', target_schema, target_table USING ERRCODE = 'undefined_table';
  END IF;
  SELECT max(pg_catalog.format_type(a.atttypid, a.atttypmod)) FILTER (WHERE a.attname = target_column),
         max(pg_catalog.format_type(a.atttypid, a.atttypmod)) FILTER (WHERE a.attname = key_column),
         max(pg_catalog.format_type(a.atttypid, a.atttypmod)) FILTER (WHERE a.attname = tenant_column)
    INTO target_type, key_type, tenant_type
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;
  IF target_type IS NULL OR key_type IS NULL OR (tenant_column IS NOT NULL AND tenant_type IS NULL) THEN
    RAISE EXCEPTION 'column % of relation %.% does not exist', CASE WHEN target_type IS NULL THEN target_column WHEN key_type IS NULL THEN key_column ELSE tenant_column END,
      target_schema, target_table USING ERRCODE = 'undefined_column';
  END IF;
  matches := pg_catalog.format('%I = $3::%s', key_column, key_type);
  IF tenant_column IS NOT NULL THEN
    matches := matches || pg_catalog.format(' AND %I = $4::%s', tenant_column, tenant_type);
  END IF;
  statement := pg_catalog.format('UPDATE %s SET %s WHERE %s', target,
    CASE WHEN increment IS NULL THEN pg_catalog.format('%I = $1::%s', target_column, target_type)
         ELSE pg_catalog.format('%1$I = coalesce(%1$I, 0) + $2::%2$s', target_column, target_type) END,
    matches);
  -- The table's triggers and the operators of its types (citext's, say) are the application's, written for the
  -- search path its sessions have: they run with the one walflow's session started with, as this role.
  PERFORM pg_catalog.set_config('search_path', (SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path'), true);
  EXECUTE statement USING new_value, increment, key_value, tenant;
  GET DIAGNOSTICS updated = ROW_COUNT;
  RETURN updated;
END
$$;

REVOKE ALL ON FUNCTION walflow.update_field(name, name, name, name, text, name, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION walflow.update_field(name, name, name, name, text, name, text, text, text) TO CURRENT_USER;

-- Handing a function to a role takes that role's CREATE on the schema; it keeps none after.
GRANT CREATE ON SCHEMA walflow TO walflow_update_field;
ALTER FUNCTION walflow.update_field(name, name, name, name, text, name, text, text, text) OWNER TO walflow_update_field;
REVOKE CREATE ON SCHEMA walflow FROM walflow_update_field;
