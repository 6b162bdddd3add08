-- The outbox guard's WHEN clause (0013), cheaper to prepare. PostgreSQL reads a trigger's WHEN clause back from
-- its stored text, constant-folds and compiles it for every INSERT statement, before the first row. The ARRAY[…]
-- of five text constants had to be folded each time; one text[] literal is a single constant already. coalesce
-- went too: a NULL WHEN result skips the trigger exactly as false does. Same rows fire the guard as before.
-- Measured with single-row inserts in one backend, interleaved with a copy of the outbox keeping 0013's clause
-- (min over 30 rounds of 1000): 18.8 µs per insert with 0013's clause, 16.3 µs with this one, 11.7 µs with no
-- trigger at all.
DROP TRIGGER outbox_guard_metadata ON walflow.outbox;
CREATE TRIGGER outbox_guard_metadata
  BEFORE INSERT ON walflow.outbox
  FOR EACH ROW
  WHEN (NEW.metadata ?| '{correlationId,causationId,depth,workflowId,runId}'::text[]
        OR current_setting('walflow.actor_id', true) <> '')
  EXECUTE FUNCTION walflow.outbox_guard_metadata();
