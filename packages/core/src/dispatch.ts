import type { BatchProgress } from './batch-progress.js';
import type { WalflowErrorCode } from './errors.js';
import type { CommitPosition, EventEnvelope } from './event-envelope.js';
import type { Lsn } from './lsn.js';

/** An outbox row that cannot become an event; it is kept in `walflow.dead_letters` with the raw row. */
export interface ParkedRow {
  outboxId: string | null;
  tenantId: string;
  eventType: string | null;
  code: WalflowErrorCode;
  reason: string;
  /** The row as it arrived, so an operator can fix and re-emit it. */
  raw: Record<string, unknown>;
  commit: CommitPosition;
}

/** The end of a whole committed transaction: once its effects are committed, the slot may move past it. */
export interface TransactionEnd {
  commitLsn: Lsn;
  /** The end of the transaction's commit record; acknowledging it confirms the whole transaction. */
  endLsn: Lsn;
  committedAt: string;
}

/** A run of the committed stream, recorded in one database transaction. */
export interface DispatchBatch {
  events: EventEnvelope[];
  parked: ParkedRow[];
  /** The last whole transaction in the batch; null when the batch only holds part of a large transaction. */
  checkpoint: TransactionEnd | null;
  /** Events read from the outbox by `walflow repair` rather than from the WAL; recorded as recovered. */
  recovered?: boolean;
  /** This batch's progress, which the dispatcher reports, when the batch after it may be recorded meanwhile. */
  progress?: BatchProgress;
  /**
   * The progress of the batch before, when both are recorded at once. This batch inserts its events after
   * that batch did, and reads guard state and writes its outcomes after that batch committed, so it is
   * recorded as if it came after; if that batch's first attempt fails, this one fails with
   * `previous_batch_failed` and records nothing.
   */
  previous?: BatchProgress;
}

export interface DispatchResult {
  /** Events recorded for the first time (redeliveries are not counted): recordedEvents.length. */
  recorded: number;
  /** Those events: not the redelivered ones, nor those parked instead (a poison event, a reused id). */
  recordedEvents: readonly EventEnvelope[];
  /** Events that were already recorded: a redelivery after a restart. */
  duplicates: number;
  runsQueued: number;
  parked: number;
  /** Decisions made for the new events, by outcome. */
  decisions?: Partial<Record<string, number>>;
}

/**
 * Where the CDC stream hands its batches. The executor implements it; the server wires the two, so neither
 * package imports the other.
 */
export interface BatchDispatcher {
  dispatch(batch: DispatchBatch): Promise<DispatchResult>;
}
