-- The runs' aggregate columns lead two indexes every queued run enters (workflow_runs_chain and
-- workflow_runs_unfinished_by_aggregate). In a database whose default collation is glibc's (en_US.UTF-8, the
-- default of many installations) every comparison of their keys called strcoll: `pnpm bench --only dispatch`
-- measured a dispatch at 1.04–1.09× its time in a C database. They are identifiers, compared for equality
-- (ordered runs, the loop guard); byte order is all any reader needs, and equality is the same in every
-- deterministic collation. Both indexes are rebuilt, under the table's lock.
ALTER TABLE walflow.workflow_runs
  ALTER COLUMN aggregate_type TYPE text COLLATE "C",
  ALTER COLUMN aggregate_id TYPE text COLLATE "C";
