import {
  BatchProgress,
  explainConnectFailure,
  isWalflowError,
  parseLsn,
  WalflowError,
  type BatchDispatcher,
  type DispatchBatch,
  type DispatchResult,
  type EventCatalog,
  type Lsn,
} from '@walflow/core';
import type { ClientConfig } from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import type { Logger } from 'pino';
import { AckTracker } from './ack-tracker.js';
import { SilenceWatch } from './silence-watch.js';
import type { ChangeDecoder } from './change-decoder.js';
import { OUTBOX_SCHEMA, OUTBOX_TABLE } from './outbox-stream.js';
import { TransactionAssembler, type StreamSlice } from './transaction-assembler.js';

export interface StreamSessionOptions {
  connection: ClientConfig;
  slotName: string;
  /** The decoder of the plugin the slot was created with. */
  decoder: ChangeDecoder;
  /** The slot's confirmed position at the start, the reply to keepalives until a transaction is acknowledged. */
  confirmedFlush?: Lsn | undefined;
  dispatcher: BatchDispatcher;
  logger: Logger;
  catalog?: EventCatalog | undefined;
  /** Rows gathered before the stream waits for the dispatcher. @default 5000 */
  maxBatchRows?: number;
  /**
   * …or characters of their text (payloads and metadata as JSON), so that a backlog of large payloads is not read
   * into memory 5,000 rows at a time: each batch in flight, and the next one gathering, holds its rows' text and
   * what was parsed of it. @default 32 Mi
   */
  maxBatchTextLength?: number;
  /** Rows of one transaction handed on before its commit arrives. @default 2000 */
  sliceSize?: number;
  /** …or characters of their text. @default 8 Mi */
  sliceTextLength?: number;
  /**
   * Full batches recorded at once. The next batch records its events while the one before writes its
   * outcomes; the dispatcher orders their guard reads and commits (DispatchBatch.previous). @default 2
   */
  batchesInFlight?: number;
  /**
   * At most this many messages are decoded in one turn of the event loop. The library hands over everything
   * read from the socket in one go, without returning to the event loop: thousands of messages (40–130 ms) in a
   * backlog, during which the dispatch's replies, and HTTP, wait. @default 500
   */
  messagesPerTurn?: number;
  /**
   * Standby status is sent at least this often, as pg_recvlogical's --status-interval does: while the stream is
   * held back by its own batches, the server's keepalives wait unread in the socket, and a batch slower than
   * `wal_sender_timeout` (a wait behind an apply's lock, a slow disk) would end the connection. It repeats the
   * confirmed position and never moves it. @default 10000
   */
  statusIntervalMs?: number;
  /** Told after each batch's effects are committed, before the slot is acknowledged. */
  onBatch?: ((result: DispatchResult, batch: DispatchBatch) => void) | undefined;
  /** Told once START_REPLICATION succeeded. */
  onStreaming?: (() => void) | undefined;
  /**
   * The session fails (and the consumer reconnects) once nothing — no message, no keepalive — has arrived for
   * this long while the stream was not held back by its own batches: a network that dropped the connection
   * without a word leaves it waiting for ever otherwise. Off when undefined.
   */
  silenceLimitMs?: number | undefined;
  /**
   * The server process streaming the slot now (pg_replication_slots.active_pid), asked over another connection
   * before a silent session is given up: a walsender decoding a long transaction that holds nothing for walflow
   * may send nothing for minutes (wal2json before 2.6 sends no keepalive meanwhile), and is no dead connection.
   */
  slotHolder?: (() => Promise<number | null>) | undefined;
}

/** A batch with writes, as the batch after it follows it. */
interface BatchWrites {
  /** Its current attempt's progress: the next batch inserts after it and decides after its commit. */
  progress: BatchProgress;
  /** Its whole dispatch, a later attempt included. */
  committed: Promise<void>;
}

/**
 * One replication connection's lifetime: stream, assemble, record in batches, acknowledge what is recorded.
 * A session is never reused (pg-logical-replication resumes a re-subscribed instance from the last *received*
 * LSN, skipping what was never recorded): after a failure the consumer starts a new one.
 */
export class StreamSession {
  private readonly service: LogicalReplicationService;
  private readonly assembler: TransactionAssembler;
  private readonly acks: AckTracker;
  private readonly maxBatchRows: number;
  private readonly maxBatchTextLength: number;
  private readonly batchesInFlight: number;
  private readonly messagesPerTurn: number;
  /** Messages decoded since the event loop last turned; a setImmediate queued by the turn's first one resets it. */
  private messagesThisTurn = 0;
  private pending: StreamSlice[] = [];
  private pendingRows = 0;
  private pendingTextLength = 0;
  /** Batches being recorded and acknowledged, oldest first; they never reject (a failure ends the session). */
  private recording: Promise<void>[] = [];
  /** The newest dispatched batch with writes, and the newest acknowledgement: the next batch comes after both. */
  private newest: { writes: BatchWrites | undefined; acknowledged: Promise<unknown> } | null = null;
  private dispatchScheduled = false;
  private failure: unknown = null;
  private draining = false;
  /** stop() is closing the connection: what the connection reports from then on is its closing, no failure. */
  private closing = false;
  private readonly silence: SilenceWatch;
  private markStopped!: () => void;
  /** Resolves once stop() has closed the connection. */
  private readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));

  constructor(private readonly options: StreamSessionOptions) {
    this.maxBatchRows = options.maxBatchRows ?? 5000;
    this.maxBatchTextLength = options.maxBatchTextLength ?? 32 * 1024 * 1024;
    this.batchesInFlight = options.batchesInFlight ?? 2;
    this.messagesPerTurn = options.messagesPerTurn ?? 500;
    // Never let the library acknowledge: auto-ack and its status timer both report *received* positions.
    this.service = new LogicalReplicationService(options.connection, {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: true },
    });
    this.assembler = new TransactionAssembler({
      outboxSchema: OUTBOX_SCHEMA,
      outboxTable: OUTBOX_TABLE,
      catalog: options.catalog,
      sliceSize: options.sliceSize,
      sliceTextLength: options.sliceTextLength,
    });
    this.acks = new AckTracker(this.service, options.confirmedFlush);
    this.silence = new SilenceWatch(options.silenceLimitMs, () => this.streamedToThisConnection(), (error) => this.fail(error));
  }

  /** Streams until stop() or a failure: resolves after a clean stop, rejects with the failure. */
  async run(): Promise<void> {
    this.service.on('data', (_lsn: string, raw: unknown) => this.onData(raw));
    this.service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => this.onKeepalive(lsn, shouldRespond));
    this.service.on('error', (error: Error) => this.fail(error));
    let streaming = false;
    this.service.on('start', () => {
      streaming = true;
      this.options.onStreaming?.();
    });
    this.silence.start();
    // Standby status is a message of the streaming protocol: none before START_REPLICATION has succeeded.
    const status = setInterval(() => {
      if (streaming) void this.acks.repeat().catch((error: unknown) => this.fail(error));
    }, this.options.statusIntervalMs ?? 10_000);
    status.unref();
    try {
      // 0/0 asks the server to start from the slot's confirmed position. A stop while the library still opens the
      // connection ends it, and pg never settles a connect() that end() cut short: subscribe() would never return.
      await Promise.race([this.service.subscribe(this.options.decoder.createPlugin(), this.options.slotName, '0/00000000'), this.stopped]);
    } catch (error) {
      this.fail(error);
    }
    this.silence.stop();
    clearInterval(status);
    await this.service.stop();
    // The session ends with its last dispatch, so a new session never records alongside it.
    await this.settled();
    if (this.failure !== null) {
      throw WalflowError.from(this.failure, 'replication_failed', `replication from slot ${this.options.slotName} failed`);
    }
  }

  /** Records what has been received, acknowledges it, and closes the connection. */
  async stop(): Promise<void> {
    this.draining = true;
    // Each recorded batch starts the next one, until nothing is pending.
    this.dispatchPending();
    await this.settled();
    this.closing = true;
    await this.service.stop();
    this.markStopped();
  }

  private async settled(): Promise<void> {
    while (this.recording.length > 0) await this.recording[0];
  }

  /** Whether the server still streams the slot to this session's connection (false when it cannot be asked). */
  private async streamedToThisConnection(): Promise<boolean> {
    const ownPid = (this.service as unknown as { _client?: { processID?: number } })._client?.processID;
    if (this.options.slotHolder === undefined || ownPid === undefined) return false;
    try {
      return (await this.options.slotHolder()) === ownPid;
    } catch {
      return false;
    }
  }

  private async onData(raw: unknown): Promise<void> {
    this.silence.heard();
    // The library waits for this handler before it hands over the next message, so this pauses the stream too.
    // Live traffic never reaches the limit in one turn; only a backlog is made to wait here.
    if (this.messagesThisTurn === this.messagesPerTurn) await new Promise((resolve) => setImmediate(resolve));
    if (this.messagesThisTurn++ === 0) setImmediate(() => (this.messagesThisTurn = 0));
    if (this.failure !== null || this.draining) return;
    try {
      const message = this.options.decoder.decode(raw);
      for (const slice of this.assembler.accept(message)) {
        this.pending.push(slice);
        this.pendingRows += slice.events.length + slice.parked.length;
        this.pendingTextLength += slice.textLength;
      }
      if (this.isBatchFull()) {
        // Waiting here is the backpressure: the library pauses the socket until the handler returns. It only
        // waits while the batches before are still being recorded, so the next batch is read and decoded meanwhile.
        await this.silence.whileHolding(async () => {
          while (this.recording.length >= this.batchesInFlight && this.isBatchFull()) await this.recording[0];
        });
        this.dispatchPending();
      } else if (this.pending.length > 0) this.scheduleDispatch();
    } catch (error) {
      this.fail(error);
    }
  }

  private isBatchFull(): boolean {
    return this.pendingRows >= this.maxBatchRows || this.pending.length >= this.maxBatchRows || this.pendingTextLength >= this.maxBatchTextLength;
  }

  /** Dispatches once the messages already read from the socket are processed, so one batch spans them all. */
  private scheduleDispatch(): void {
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
  private dispatchPending(): void {
    // Only a full batch goes beside another: under light load a second small transaction only adds a commit,
    // while waiting lets the next batch gather what arrives meanwhile.
    const limit = this.isBatchFull() ? this.batchesInFlight : 1;
    if (this.recording.length >= limit || this.pending.length === 0 || this.failure !== null) return;
    const batch = toBatch(this.pending);
    this.pending = [];
    this.pendingRows = 0;
    this.pendingTextLength = 0;
    const before = this.newest;
    // A batch of empty transactions needs no write at all, only its acknowledgement in turn.
    const writes = batch.events.length > 0 || batch.parked.length > 0 ? this.record(batch, before?.writes) : undefined;
    const acknowledged = bothSettled(writes?.committed, before?.acknowledged).then(async () => {
      if (batch.checkpoint) await this.acks.confirm(batch.checkpoint.endLsn);
    });
    this.newest = { writes: writes ?? before?.writes, acknowledged };
    const recorded: Promise<void> = acknowledged.then(
      () => this.finished(recorded),
      (error: unknown) => {
        // Failed first, so that finishing starts no further batch.
        this.fail(error);
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

  private onKeepalive(lsn: string, shouldRespond: boolean): void {
    this.silence.heard();
    if (this.failure !== null) return;
    const position = parseLsn(lsn);
    // A keepalive at the confirmed position itself moves nothing, but one that asks for a reply still gets it.
    const acknowledged = this.isIdle() && position > this.acks.confirmedLsn ? this.acks.confirm(position) : shouldRespond ? this.acks.repeat() : null;
    acknowledged?.catch((error: unknown) => this.fail(error));
  }

  /**
   * Keepalives bypass the library's flow-control queue, so a keepalive's position may lie beyond messages
   * still queued there: it is only confirmed when nothing is queued, open, pending or being recorded.
   */
  private isIdle(): boolean {
    const queue = this.service as unknown as { _messageQueue?: unknown[]; _processing?: boolean };
    const libraryIdle = (queue._messageQueue?.length ?? 1) === 0 && queue._processing === false;
    return libraryIdle && !this.assembler.inTransaction && this.pending.length === 0 && this.recording.length === 0;
  }

  private fail(reported: unknown): void {
    // The library reports a connection that did not open both as an 'error' event and by subscribe() failing.
    const error = explainConnectFailure(reported, this.options.connection.connectionTimeoutMillis);
    if (this.closing) {
      this.options.logger.debug({ err: error, slot: this.options.slotName }, 'replication connection closing');
      return;
    }
    if (this.failure !== null) return;
    this.failure = error;
    this.options.logger.warn({ err: error, slot: this.options.slotName }, 'replication session failed');
    void this.service.stop();
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
