import { BatchProgress, isWalflowError, type BatchDispatcher, type DispatchBatch, type DispatchResult } from '@walflow/core';
import type { AckTracker } from './ack-tracker.js';
import type { StreamSlice } from './transaction-assembler.js';

export interface BatchPipelineOptions {
  dispatcher: BatchDispatcher;
  acks: AckTracker;
  /** Rows (or slices) gathered before the pending batch is full. */
  maxBatchRows: number;
  /** …or characters of their text. */
  maxBatchTextLength: number;
  /** Full batches recorded at once (StreamSessionOptions.batchesInFlight). */
  batchesInFlight: number;
  /** Told after each batch's effects are committed, before the slot is acknowledged. */
  onBatch?: ((result: DispatchResult, batch: DispatchBatch) => void) | undefined;
  /** Whether the session has failed: no batch starts from then on. */
  failed(): boolean;
  /** A batch failed to record or to be acknowledged: the session ends. */
  fail(error: unknown): void;
}

/** A batch with writes, as the batch after it follows it. */
interface BatchWrites {
  /** Its current attempt's progress: the next batch inserts after it and decides after its commit. */
  progress: BatchProgress;
  /** Its whole dispatch, a later attempt included. */
  committed: Promise<void>;
}

/**
 * The stream's slices from the assembler to the slot's acknowledgement: gathered into batches, recorded in
 * stream order with at most `batchesInFlight` at once, and each acknowledged after its own commit and the
 * acknowledgement before it.
 */
export class BatchPipeline {
  private pending: StreamSlice[] = [];
  private pendingRows = 0;
  private pendingTextLength = 0;
  /** Batches being recorded and acknowledged, oldest first; they never reject (a failure ends the session). */
  private recording: Promise<void>[] = [];
  /** The newest dispatched batch with writes, and the newest acknowledgement: the next batch comes after both. */
  private newest: { writes: BatchWrites | undefined; acknowledged: Promise<unknown> } | null = null;
  private dispatchScheduled = false;

  constructor(private readonly options: BatchPipelineOptions) {}

  add(slice: StreamSlice): void {
    this.pending.push(slice);
    this.pendingRows += slice.events.length + slice.parked.length;
    this.pendingTextLength += slice.textLength;
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Nothing gathered and nothing being recorded. */
  get isIdle(): boolean {
    return this.pending.length === 0 && this.recording.length === 0;
  }

  get isFull(): boolean {
    const { maxBatchRows, maxBatchTextLength } = this.options;
    return this.pendingRows >= maxBatchRows || this.pending.length >= maxBatchRows || this.pendingTextLength >= maxBatchTextLength;
  }

  /** Waits while the pending batch is full and `batchesInFlight` batches are being recorded. */
  async waitForRoom(): Promise<void> {
    while (this.recording.length >= this.options.batchesInFlight && this.isFull) await this.recording[0];
  }

  /** Resolves once no batch is being recorded. */
  async settled(): Promise<void> {
    while (this.recording.length > 0) await this.recording[0];
  }

  /** Dispatches once the messages already read from the socket are processed, so one batch spans them all. */
  scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatchPending();
    });
  }

  /**
   * Starts recording everything pending, unless `batchesInFlight` batches (one, if the pending batch is not
   * full) are being recorded: then the pending slices wait and go next. Batches start in stream order and are
   * recorded in it (the dispatcher follows DispatchBatch.previous); each one is acknowledged after its commit
   * and the acknowledgement before, so the slot never moves past a transaction whose effects are not committed.
   */
  dispatchPending(): void {
    // Only a full batch goes beside another: under light load a second small transaction only adds a commit,
    // while waiting lets the next batch gather what arrives meanwhile.
    const limit = this.isFull ? this.options.batchesInFlight : 1;
    if (this.recording.length >= limit || this.pending.length === 0 || this.options.failed()) return;
    const batch = toBatch(this.pending);
    this.pending = [];
    this.pendingRows = 0;
    this.pendingTextLength = 0;
    const before = this.newest;
    // A batch of empty transactions needs no write at all, only its acknowledgement in turn.
    const writes = batch.events.length > 0 || batch.parked.length > 0 ? this.record(batch, before?.writes) : undefined;
    const acknowledged = bothSettled(writes?.committed, before?.acknowledged).then(async () => {
      if (batch.checkpoint) await this.options.acks.confirm(batch.checkpoint.endLsn);
    });
    this.newest = { writes: writes ?? before?.writes, acknowledged };
    const recorded: Promise<void> = acknowledged.then(
      () => this.finished(recorded),
      (error: unknown) => {
        // Failed first, so that finishing starts no further batch.
        this.options.fail(error);
        this.finished(recorded);
      },
    );
    this.recording.push(recorded);
  }

  /**
   * Records a batch with writes after `previous`, the batch with writes before it. If that batch's attempt fails,
   * this one records nothing (`previous_batch_failed`); the dispatcher may still record that batch on a later
   * attempt (again around rows that existed, or with a bad event parked), and this one is then recorded after
   * it, under a new progress, which the batches after it follow. A batch whose `previous` had already failed its
   * first attempt when it starts goes straight to waiting: an attempt beside it could only fail, and would fail
   * the batch started beside this one too.
   */
  private record(batch: DispatchBatch, previous: BatchWrites | undefined): BatchWrites {
    const attempt = (progress: BatchProgress, after: BatchProgress | undefined): Promise<DispatchResult> =>
      this.options.dispatcher.dispatch({ ...batch, progress, previous: after }).then(
        (result) => {
          // A dispatcher that reports no progress has it settled when its dispatch does: the next batch then waits.
          progress.markCommitted();
          return result;
        },
        (error: unknown) => {
          progress.markFailed(error);
          throw error;
        },
      );
    const writes: BatchWrites = { progress: new BatchProgress(), committed: Promise.resolve() };
    const first = previous?.progress.failed
      ? previous.committed.then(
          () => attempt(writes.progress, undefined),
          (error: unknown) => {
            // Never attempted: its progress fails here, or a batch recording beside it would wait for ever.
            writes.progress.markFailed(error);
            throw error;
          },
        )
      : attempt(writes.progress, previous?.progress);
    writes.committed = first
      .catch(async (error: unknown) => {
        if (!isWalflowError(error, 'previous_batch_failed') || previous === undefined) throw error;
        await previous.committed;
        writes.progress = new BatchProgress();
        return attempt(writes.progress, undefined);
      })
      .then((result) => this.options.onBatch?.(result, batch));
    return writes;
  }

  private finished(recorded: Promise<void>): void {
    this.recording = this.recording.filter((entry) => entry !== recorded);
    // What arrived while batches were being recorded is the next batch.
    this.dispatchPending();
  }
}

/**
 * Settles once both have, failing as the earlier batch's `before` did, else as `own` did. A batch's place in
 * `recording` must last as long as its own dispatch, even when the batch before it failed first: the session
 * ends only after it, and a new session never records beside it.
 */
async function bothSettled(own: Promise<void> | undefined, before: Promise<unknown> | undefined): Promise<void> {
  const [mine, earlier] = await Promise.allSettled([own, before]);
  if (earlier.status === 'rejected') throw earlier.reason;
  if (mine.status === 'rejected') throw mine.reason;
}

function toBatch(slices: StreamSlice[]): DispatchBatch {
  const batch: DispatchBatch = { events: [], parked: [], checkpoint: null };
  for (const slice of slices) {
    for (const event of slice.events) batch.events.push(event);
    for (const row of slice.parked) batch.parked.push(row);
    if (slice.end) batch.checkpoint = slice.end;
  }
  return batch;
}
