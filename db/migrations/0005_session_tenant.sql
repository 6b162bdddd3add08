-- An application session that set walflow.tenant_id emits for that tenant unless it names another (which the
-- tenancy policies then refuse): the tenant no longer has to be repeated on every emit.
ALTER TABLE walflow.outbox
  ALTER COLUMN tenant_id SET DEFAULT coalesce(nullif(current_setting('walflow.tenant_id', true), ''), 'default');

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
          coalesce($6, '{}') - ARRAY['correlationId', 'causationId', 'depth', 'workflowId', 'runId'])
  RETURNING o.id INTO new_id;
  RETURN new_id;
END
$$;
