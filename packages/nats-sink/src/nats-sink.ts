import { backoffDelay, WakeableSleep, WalflowError, type BackoffOptions, type WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { JetStreamPublisher } from './jetstream-publisher.js';
import { ensurePublisherRow, eventsAfter, registerCursor, saveCursor, savedCursor, tryLockSink } from './sink-cursor.js';
import { DEFAULT_PAGE_BYTES } from './sized-page.js';
import { sinkMessage } from './sink-message.js';
import { sinkName, type NatsSinkSettings } from './sink-settings.js';

export type SinkState = 'starting' | 'publishing' | 'standby' | 'failing' | 'stopped';

export interface SinkStatus {
  /** `publishing` also when caught up; `standby` while another process publishes for this database. */
  state: SinkState;
  since: Date;
  /** Why the sink is failing. */
  reason?: string;
  /** Messages JetStream acknowledged in this process, and how many of them it had already. */
  published: number;
  duplicates: number;
}

export interface NatsSinkOptions {
  /** Holds one connection for each round (lock, read, publish, cursor save). */
  db: Kysely<WalflowDatabase>;
  settings: NatsSinkSettings;
  logger: Logger;
  /** Events published, acknowledged and saved together. @default 500 */
  batchSize?: number;
  /** The most payload and metadata a batch holds in this process, in bytes, after its first event. @default 32 MiB */
  batchBytes?: number;
  /** How often an idle or standby sink looks for new events; notify() wakes it at once. @default 1000 */
  pollMs?: number;
  /** Delays after failed rounds; reconnecting to NATS is cheap, so they stay short. @default { initialMs: 500, maxMs: 5000 } */
  retry?: BackoffOptions;
  /**
   * How long a round's transaction may wait between statements before the server ends its session (which the pool
   * of `db` must survive: an 'error' listener on its clients) and a standby may publish: well above a publish's
   * wait for JetStream (5 s); the connect and the stream's checks happen outside any round. @default 60_000
   */
  roundIdleLimitMs?: number;
}


type Round =
  | { kind: 'registered' }
  | { kind: 'unconnected' }
  | { kind: 'published' }
  | { kind: 'idle' }
  | { kind: 'standby' }
  | { kind: 'interrupted' }
  | { kind: 'failed'; error: unknown };

/**
 * Publishes every recorded event to JetStream, in commit order, following walflow.events with a cursor of its
 * own. Each round runs in one transaction holding the sink's publisher lock: read the cursor, read the next
 * events, publish them, and save the cursor past the prefix JetStream acknowledged (connecting to NATS, and checking
 * the stream, happen between rounds, holding nothing). The slot never waits for
 * it: a NATS outage leaves events behind the cursor (sink lag), not WAL. A crash between the acknowledgements
 * and the save re-publishes that round, and JetStream drops the repeats by Nats-Msg-Id.
 */
export class NatsSink {
  readonly name: string;
  private current: SinkStatus = { state: 'stopped', since: new Date(), published: 0, duplicates: 0 };
  private publisher: JetStreamPublisher | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  /** Resolves when stop() is called during this start: a connect in flight is not waited for. */
  private stopRequested: Promise<void> = new Promise(() => undefined);
  private requestStop: () => void = () => undefined;
  /** The wait between polls, which notify() cuts short. */
  private readonly pause = new WakeableSleep();
  /** The wait after a failed round, which only stop() cuts short: recorded events must not hurry a retry. */
  private readonly backoff = new WakeableSleep();
  private readonly batchSize: number;

  constructor(private readonly options: NatsSinkOptions) {
    this.name = sinkName(options.settings);
    this.batchSize = options.batchSize ?? 500;
  }

  get status(): SinkStatus {
    return this.current;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.stopRequested = new Promise((resolve) => (this.requestStop = resolve));
    this.setState('starting');
    this.loop = this.run();
  }

  /** Finishes the round in progress (its cursor save included) and closes the NATS connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.requestStop();
    this.pause.wake();
    this.backoff.wake();
    await this.loop;
    this.loop = null;
    await this.publisher?.close();
    this.publisher = null;
    this.setState('stopped');
  }

  /** New events were recorded: publish them now rather than at the next poll. */
  notify(): void {
    this.pause.wake();
  }

  private async run(): Promise<void> {
    const { logger, settings } = this.options;
    let failures = 0;
    while (!this.stopping) {
      let round: Round;
      try {
        round = await this.round();
        // Connected outside any round: a standby waits on the publisher lock only while a round publishes.
        if (round.kind === 'unconnected' && !this.stopping) await this.connected();
      } catch (error) {
        round = { kind: 'failed', error };
      }
      // A round a stop cut short (or that failed as it came) is not retried: nothing to report as retrying.
      if (round.kind === 'failed' && this.stopping) break;
      if (round.kind === 'failed') {
        const reason = round.error instanceof Error ? round.error.message : String(round.error);
        const delayMs = backoffDelay(failures++, { initialMs: 500, maxMs: 5000, ...this.options.retry });
        if (this.current.state !== 'failing' || this.current.reason !== reason) logger.warn({ err: round.error, stream: settings.stream, delayMs }, 'the JetStream sink cannot publish; retrying');
        this.setState('failing', reason);
        // A fresh connection next time: it drops whatever the old one still buffers, and checks the stream again.
        await this.publisher?.close();
        this.publisher = null;
        await this.backoff.sleep(delayMs);
        continue;
      }
      // Connected, it has yet to publish: a failure next still backs off as the one before did.
      if (round.kind === 'unconnected') continue;
      if (failures > 0) logger.info({ stream: settings.stream }, 'the JetStream sink publishes again');
      failures = 0;
      if (round.kind === 'standby') {
        if (this.current.state !== 'standby') logger.info({ stream: settings.stream }, 'standby: another walflow process publishes to the JetStream sink');
        this.setState('standby');
      } else if (this.current.state !== 'publishing') {
        this.setState('publishing');
      }
      if (round.kind === 'idle' || round.kind === 'standby') await this.pause.sleep(this.options.pollMs ?? 1000);
    }
  }

  private async round(): Promise<Round> {
    // At every round, so that a row deleted meanwhile does not leave every process in standby for ever.
    await ensurePublisherRow(this.options.db, this.name);
    return this.options.db.transaction().execute(async (trx): Promise<Round> => {
      if (!(await tryLockSink(trx, this.name, this.options.roundIdleLimitMs ?? 60_000))) return { kind: 'standby' };
      const cursor = await savedCursor(trx, this.name);
      if (cursor === undefined) {
        // Before NATS is reached: from here on every recorded event has its place in recording order, so a first
        // start during a NATS outage publishes what is recorded meanwhile once NATS is back. Committed by itself:
        // the registration lock it holds keeps dispatch waiting until then.
        await registerCursor(trx, this.name);
        this.options.logger.info({ stream: this.options.settings.stream }, 'the JetStream sink starts at the end of the event log: replay --to-sink publishes what came before');
        return { kind: 'registered' };
      }
      if (cursor.beyondCluster) {
        const reason = `the JetStream sink's cursor (transaction ${cursor.recordedXid}) lies beyond this cluster's transaction ids, so every event recorded here would sort behind it: carried over from another cluster? clear the recording positions and the cursor (README, JetStream sink)`;
        return { kind: 'failed', error: new WalflowError('sink_failed', reason) };
      }
      const publisher = this.publisher;
      if (publisher === null) return { kind: 'unconnected' };
      const unavailable = publisher.unavailable;
      // Publishing into a reconnecting client would only queue messages that time out here and arrive later.
      if (unavailable !== null) return { kind: 'failed', error: new WalflowError('sink_failed', unavailable) };
      const maxBytes = publisher.maxMessageBytes;
      const events = await eventsAfter(trx, cursor, { events: this.batchSize, bytes: this.options.batchBytes ?? DEFAULT_PAGE_BYTES, messageBytes: maxBytes });
      if (events.length === 0) return { kind: 'idle' };
      const outcome = await publisher.publish(events.map((event) => sinkMessage(event, this.options.settings.subject, { maxBytes })));
      this.current = { ...this.current, published: this.current.published + outcome.stored, duplicates: this.current.duplicates + outcome.duplicates };
      const last = events[outcome.stored - 1];
      // Duplicates count: JetStream holds one when the round that stored it never saved its cursor, nor its count.
      if (last !== undefined && !(await saveCursor(trx, this.name, last, outcome.stored))) {
        this.options.logger.warn({ stream: this.options.settings.stream }, "the JetStream sink's cursor was deleted while it published: it starts again at the end of the event log");
      }
      if (outcome.failure === undefined) return { kind: 'published' };
      return outcome.failure.interrupted ? { kind: 'interrupted' } : { kind: 'failed', error: outcome.failure.error };
    });
  }

  /**
   * The publisher, connecting first if need be (between rounds). A stop does not wait for a connect in flight (to a
   * server that does not answer, nats waits 20 s): it fails, publishing nothing, and the connection is closed once made.
   */
  private async connected(): Promise<JetStreamPublisher> {
    if (this.publisher !== null) return this.publisher;
    const connecting = JetStreamPublisher.connect(this.options.settings, this.options.logger);
    const publisher = await Promise.race([connecting, this.stopRequested.then(() => null)]);
    if (publisher === null) {
      void connecting.then((late) => late.close(), () => undefined);
      throw new WalflowError('sink_failed', 'stopped while connecting to NATS');
    }
    this.publisher = publisher;
    return publisher;
  }

  /** `since` stays while the state does: failing since the first failed round, whatever each one's reason. */
  private setState(state: SinkState, reason?: string): void {
    const { published, duplicates } = this.current;
    const since = state === this.current.state ? this.current.since : new Date();
    this.current = reason === undefined ? { state, since, published, duplicates } : { state, since, reason, published, duplicates };
  }
}
