/**
 * A way to get committed outbox events into a table other than walflow's, for figure 5. Every peer records what it
 * receives into bench.recorded with the source row's commit time, so its latency is measured as walflow's is.
 */
export interface Peer {
  /** Short, for the table. */
  name: string;
  /** How it is configured, for the notes. */
  description: string;
  /** Creates the peer's outbox (and whatever it needs: slot, publication) in a fresh database. */
  setup(url: string, database: string): Promise<void>;
  /** Backlog insert for writeBacklog: orders $1+1 … $1+$2 into the peer's outbox. */
  backlogInsert: string;
  /** One autocommitted insert of order `n` into the peer's outbox, for the steady load. */
  loadStatement(n: number): { text: string; values: unknown[] };
  /**
   * An SQL condition that holds once every outbox row is recorded: what the bench polls while the peer works, as
   * it polls walflow's outbox being empty, rather than counting bench.recorded twice a second.
   */
  drained: string;
  /** Starts consuming; stop() waits until it has let go of its connections. */
  start(url: string, database: string): Promise<RunningPeer>;
}

export interface RunningPeer {
  stop(): Promise<void>;
}

/** Where peers record events: the event, and the commit time of the transaction that wrote its outbox row. */
export const RECORDED_TABLE_SQL = `
  CREATE SCHEMA IF NOT EXISTS bench;
  CREATE TABLE bench.recorded (
    id             uuid        PRIMARY KEY,
    event_type     text        NOT NULL,
    aggregate_type text,
    aggregate_id   text,
    payload        jsonb       NOT NULL,
    committed_at   timestamptz NOT NULL
  )`;
