import { sql, type Kysely } from 'kysely';
import { TENANT } from '../tenant.js';

/**
 * `user.role_changed` without a line of application code: whoever changes a role — the application, an admin
 * script, psql — the trigger writes the event through walflow.emit in the same transaction, so it commits or
 * rolls back with the change. This is how events are added to code that cannot be changed. Needs the walflow
 * schema (walflow migrate) first.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION crm.emit_user_role_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM walflow.emit(
        'user.role_changed',
        jsonb_build_object('userId', NEW.id, 'name', NEW.name, 'email', NEW.email, 'from', OLD.role, 'to', NEW.role),
        'user',
        NEW.id::text,
        TG_ARGV[0],
        jsonb_build_object('source', 'trigger on ' || TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME)
      );
      RETURN NULL;
    END
    $$`.execute(db);
  // WHEN keeps updates that leave the role as it was (or touch other columns) from emitting anything.
  await sql`
    CREATE TRIGGER users_role_changed
      AFTER UPDATE OF role ON crm.users
      FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
      EXECUTE FUNCTION crm.emit_user_role_changed(${sql.lit(TENANT)})`.execute(db);
}
