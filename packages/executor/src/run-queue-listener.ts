import { backoffDelay, explainConnectFailure, WakeableSleep, type BackoffOptions } from '@walflow/core';
import pg, { type ClientConfig } from 'pg';
import type { Logger } from 'pino';
import { RUNS_QUEUED_CHANNEL } from './run-queue.js';

export interface RunQueueListenerOptions {
  /** A normal (non-replication) connection; LISTEN keeps one open for the life of the process. */
  connection: ClientConfig;
  logger: Logger;
  /** Called for every notification, and after every (re)connect: runs may have been queued while it was away. */
  onRunsQueued: () => void;
  /**
   * Notifications sent by these server processes are ignored: this process's own connections, whose writers
   * already woke the workers directly (the dispatcher, after its commit).
   */
  ownBackends?: ReadonlySet<number>;
  /** Reconnect delays. @default { initialMs: 500, maxMs: 30000 } */
  reconnect?: BackoffOptions;
}

/**
 * Wakes a process's workers when any process queues runs: LISTEN on a connection of its own. A lost
 * connection is opened again after a capped, jittered backoff; meanwhile the workers' polling finds the runs.
 */
export class RunQueueListener {
  private loop: Promise<void> | null = null;
  private stopping = false;
  private client: pg.Client | null = null;
  private readonly pause = new WakeableSleep();

  constructor(private readonly options: RunQueueListenerOptions) {}

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.pause.wake();
    await this.client?.end().catch(() => undefined);
    await this.loop;
    this.loop = null;
  }

  private async run(): Promise<void> {
    const { logger, onRunsQueued } = this.options;
    let attempt = 0;
    while (!this.stopping) {
      // keepAlive: a connection that only listens would otherwise never notice a silently dropped network.
      const client = new pg.Client({ ...this.options.connection, application_name: 'walflow-run-listener', keepAlive: true });
      this.client = client;
      const closed = new Promise<Error | undefined>((resolve) => {
        client.on('error', resolve);
        client.on('end', () => resolve(undefined));
      });
      client.on('notification', (notification) => {
        if (!this.options.ownBackends?.has(notification.processId)) onRunsQueued();
      });
      try {
        // A stop ends the client, and pg never settles a connect() that end() cut short: the end settles the wait
        // then, and the LISTEN fails on the closed client.
        await Promise.race([client.connect(), closed]);
        await client.query(`LISTEN ${RUNS_QUEUED_CHANNEL}`);
        attempt = 0;
        logger.info({ channel: RUNS_QUEUED_CHANNEL }, 'listening for queued runs');
        onRunsQueued();
        const error = await closed;
        if (!this.stopping) logger.warn({ err: error }, 'lost the connection that listens for queued runs; reconnecting');
      } catch (error) {
        if (!this.stopping) {
          logger.warn({ err: explainConnectFailure(error, this.options.connection.connectionTimeoutMillis) }, 'could not listen for queued runs; retrying (workers still poll)');
        }
      } finally {
        this.client = null;
        await client.end().catch(() => undefined);
      }
      if (this.stopping) break;
      await this.pause.sleep(backoffDelay(attempt++, { initialMs: 500, maxMs: 30_000, ...this.options.reconnect }));
    }
  }
}
