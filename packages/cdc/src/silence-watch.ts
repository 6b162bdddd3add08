import { WalflowError } from '@walflow/core';

/**
 * Notices a replication stream that has gone silent: nothing (no message, no keepalive) heard for `limitMs`
 * while this side was not holding the stream back itself. A network that drops a connection without a word
 * leaves the stream waiting for ever otherwise. Before it reports the silence it asks `stillStreamed` (the server,
 * over another connection) whether the stream is alive all the same, only quiet.
 */
export class SilenceWatch {
  private lastHeardAt = performance.now();
  private holding = false;
  private asking = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limitMs: number | undefined,
    private readonly stillStreamed: () => Promise<boolean>,
    private readonly onSilent: (error: WalflowError) => void,
  ) {}

  /** Starts watching; without a limit, it never reports. */
  start(): void {
    const limitMs = this.limitMs;
    if (limitMs === undefined) return;
    this.timer = setInterval(() => this.check(limitMs), Math.min(limitMs / 4, 5_000));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Something arrived. */
  heard(): void {
    this.lastHeardAt = performance.now();
  }

  /** Waits with the silence not counted: the stream is held back by this side, not by the network. */
  async whileHolding(wait: () => Promise<void>): Promise<void> {
    this.holding = true;
    try {
      await wait();
    } finally {
      this.holding = false;
      this.heard();
    }
  }

  private check(limitMs: number): void {
    if (this.holding) this.heard();
    if (this.asking || performance.now() - this.lastHeardAt <= limitMs) return;
    this.asking = true;
    void this.stillStreamed()
      .then((streamed) => {
        if (streamed) this.heard();
        else this.onSilent(new WalflowError('replication_failed', `nothing arrived on the replication connection for ${limitMs / 1000} s (a dropped network?): reconnecting`));
      })
      .finally(() => (this.asking = false));
  }
}
