import { formatLsn, ZERO_LSN, type Lsn } from '@walflow/core';

/** The replication connection's standby status call, as pg-logical-replication exposes it. */
export interface StandbyStatusSender {
  acknowledge(lsn: string, ping?: boolean): Promise<boolean>;
}

/**
 * Sends standby status for the slot. Only two things may move it: the end of a transaction whose effects are
 * committed, and a keepalive's position while nothing is in flight. It never moves backwards.
 */
export class AckTracker {
  private confirmed: Lsn;

  /**
   * @param startingAt the slot's confirmed position when the session starts, repeated to a keepalive that asks
   *   for a reply before anything is confirmed: a first transaction that takes longer than the server's
   *   `wal_sender_timeout` to arrive and be recorded must not end the connection. @default none (no reply)
   */
  constructor(
    private readonly sender: StandbyStatusSender,
    startingAt: Lsn = ZERO_LSN,
  ) {
    this.confirmed = startingAt;
  }

  get confirmedLsn(): Lsn {
    return this.confirmed;
  }

  /**
   * Confirms everything before `lsn`. pg-logical-replication reports `lsn + 1`, so it is handed `lsn - 1`:
   * the server then sees exactly the position it sent (a transaction's end, a keepalive's WAL end), which both
   * skips the transaction on reconnect and lets a fast shutdown finish.
   */
  async confirm(lsn: Lsn): Promise<void> {
    if (lsn <= this.confirmed) return;
    this.confirmed = lsn;
    await this.sender.acknowledge(formatLsn((lsn - 1n) as Lsn));
  }

  /** Answers a keepalive that asks for a reply without moving the position. */
  async repeat(): Promise<void> {
    if (this.confirmed === ZERO_LSN) return;
    await this.sender.acknowledge(formatLsn((this.confirmed - 1n) as Lsn));
  }
}
