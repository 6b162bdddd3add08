-- A dead letter per (outbox id, commit) instead of per outbox id. An application may reuse an outbox id once the
-- dispatcher has deleted the row, and a retried letter goes back under its own id: with one letter per id, a
-- second row parked under an id replaced the first letter's row while it was still open, and that row was lost.
-- Now each commit that parks a row keeps a letter of its own; a transaction delivered again after a restart (the
-- same commit) meets its letter and leaves it as the operator left it. Rows without an id never meet.
ALTER TABLE walflow.dead_letters DROP CONSTRAINT dead_letters_outbox_id_key;
ALTER TABLE walflow.dead_letters ADD CONSTRAINT dead_letters_outbox_id_commit_key UNIQUE (outbox_id, commit_lsn);
