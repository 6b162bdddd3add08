-- Every operator action (workflows applied, paused, resumed or deleted; dead letters retried or discarded;
-- repairs), with who did it. Kept longer than the event log.
CREATE TABLE walflow.audit_log (
  id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  actor     text        NOT NULL,
  action    text        NOT NULL,
  target    text,
  arguments jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON walflow.audit_log (at);
