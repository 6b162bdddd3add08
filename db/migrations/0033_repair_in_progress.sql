-- A repair marks its slot's state before it creates the new slot and clears the mark when every outbox row it
-- found is dispatched. A repair killed in between (kill -9, a lost machine) left a slot that starts after the rows
-- it had yet to dispatch: a consumer streaming from it would never record them. The consumer now refuses a
-- marked slot and says to run the repair again, which drops the slot and takes the rows up.
ALTER TABLE walflow.consumer_state ADD COLUMN repair_started_at timestamptz;
