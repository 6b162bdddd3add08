-- metadata.replayId joins the causal metadata only walflow may set: events caused down a chain that a replay's
-- run started carry it, and the loop guard of a live decision then counts that replay's runs in the chain. The
-- guard's function (0003), its WHEN clause (0015) and walflow.emit (0005) strip it from rows written by anyone
-- but the outbox's owner, as they strip the other causal keys; otherwise as before.
CREATE OR REPLACE FUNCTION walflow.outbox_guard_metadata() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  actor text := nullif(current_setting('walflow.actor_id', true), '');
BEGIN
  IF jsonb_typeof(NEW.metadata) = 'object' THEN
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
      NEW.metadata := NEW.metadata - '{correlationId,causationId,depth,workflowId,runId,replayId}'::text[];
    END IF;
    IF actor IS NOT NULL AND coalesce(jsonb_typeof(NEW.metadata -> 'actorId'), 'null') = 'null' THEN
      NEW.metadata := jsonb_set(NEW.metadata, '{actorId}', to_jsonb(actor));
    END IF;
  END IF;
  RETURN NEW;
END
$$;

DROP TRIGGER outbox_guard_metadata ON walflow.outbox;
CREATE TRIGGER outbox_guard_metadata
  BEFORE INSERT ON walflow.outbox
  FOR EACH ROW
  WHEN (NEW.metadata ?| '{correlationId,causationId,depth,workflowId,runId,replayId}'::text[]
        OR current_setting('walflow.actor_id', true) <> '')
  EXECUTE FUNCTION walflow.outbox_guard_metadata();

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
  VALUES (coalesce($5, nullif(current_setting('walflow.tenant_id', true), ''), 'default'), $1, $3, $4, $2,
          coalesce($6, '{}') - '{correlationId,causationId,depth,workflowId,runId,replayId}'::text[])
  RETURNING o.id INTO new_id;
  RETURN new_id;
END
$$;
