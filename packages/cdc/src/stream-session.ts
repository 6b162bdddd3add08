import {
  explainConnectFailure,
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
import { BatchPipeline } from './batch-pipeline.js';
import { SilenceWatch } from './silence-watch.js';
import type { ChangeDecoder } from './change-decoder.js';
import { OUTBOX_SCHEMA, OUTBOX_TABLE } from './outbox-stream.js';
import { TransactionAssembler } from './transaction-assembler.js';

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

/**
 * One replication connection's lifetime: stream, assemble, record in batches, acknowledge what is recorded.
 * A session is never reused (pg-logical-replication resumes a re-subscribed instance from the last *received*
 * LSN, skipping what was never recorded): after a failure the consumer starts a new one.
 */
export class StreamSession {
  private readonly service: LogicalReplicationService;
  private readonly assembler: TransactionAssembler;
  private readonly acks: AckTracker;
  private readonly batches: BatchPipeline;
  private readonly messagesPerTurn: number;
  /** Messages decoded since the event loop last turned; a setImmediate queued by the turn's first one resets it. */
  private messagesThisTurn = 0;
  private failure: unknown = null;
  private draining = false;
  /** stop() is closing the connection: what the connection reports from then on is its closing, no failure. */
  private closing = false;
  private readonly silence: SilenceWatch;
  private markStopped!: () => void;
  /** Resolves once stop() has closed the connection. */
  private readonly stopped = new Promise<void>((resolve) => (this.markStopped = resolve));

  constructor(private readonly options: StreamSessionOptions) {
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
    this.batches = new BatchPipeline({
      dispatcher: options.dispatcher,
      acks: this.acks,
      maxBatchRows: options.maxBatchRows ?? 5000,
      maxBatchTextLength: options.maxBatchTextLength ?? 32 * 1024 * 1024,
      batchesInFlight: options.batchesInFlight ?? 2,
      onBatch: options.onBatch,
      failed: () => this.failure !== null,
      fail: (error) => this.fail(error),
    });
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
    await this.batches.settled();
    if (this.failure !== null) {
      throw WalflowError.from(this.failure, 'replication_failed', `replication from slot ${this.options.slotName} failed`);
    }
  }

  /** Records what has been received, acknowledges it, and closes the connection. */
  async stop(): Promise<void> {
    this.draining = true;
    // Each recorded batch starts the next one, until nothing is pending.
    this.batches.dispatchPending();
    await this.batches.settled();
    this.closing = true;
    await this.service.stop();
    this.markStopped();
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
      for (const slice of this.assembler.accept(message)) this.batches.add(slice);
      if (this.batches.isFull) {
        // Waiting here is the backpressure: the library pauses the socket until the handler returns. It only
        // waits while the batches before are still being recorded, so the next batch is read and decoded meanwhile.
        await this.silence.whileHolding(() => this.batches.waitForRoom());
        this.batches.dispatchPending();
      } else if (this.batches.hasPending) this.batches.scheduleDispatch();
    } catch (error) {
      this.fail(error);
    }
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
    return libraryIdle && !this.assembler.inTransaction && this.batches.isIdle;
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
