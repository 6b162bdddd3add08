-- The outbox's metadata guard (0003) only has work when a row carries metadata that only walflow may set, or
-- the session names an actor. Measured by `pnpm bench` (write overhead): running the PL/pgSQL function for
-- every row cost more than the outbox insert itself. The WHEN clause skips it when it would change nothing.
DROP TRIGGER outbox_guard_metadata ON walflow.outbox;
CREATE TRIGGER outbox_guard_metadata
  BEFORE INSERT ON walflow.outbox
  FOR EACH ROW
  WHEN (NEW.metadata ?| ARRAY['correlationId', 'causationId', 'depth', 'workflowId', 'runId']
        OR coalesce(current_setting('walflow.actor_id', true), '') <> '')
  EXECUTE FUNCTION walflow.outbox_guard_metadata();
