-- The dispatcher loads new events and their runs with COPY, which costs the server about two thirds of an INSERT
-- from a JSON parameter. PostgreSQL refuses COPY FROM wherever row security applies to the loading role, and
-- forced row security applies it to the tables' owner, which walflow may run as. The owner's only policy on
-- these tables (walflow_owner, 0003) passes every row, so forcing changed nothing for the owner but this; every
-- other role stays under the tables' policies, exactly as before. The other tables keep their forced row
-- security.
ALTER TABLE walflow.events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE walflow.workflow_runs NO FORCE ROW LEVEL SECURITY;
