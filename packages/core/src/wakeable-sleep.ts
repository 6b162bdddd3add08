/**
 * A timer that another part of the program can end early: for loops that wait for their next round, or for a
 * reconnect delay, and must react at once to stop() or to news.
 */
export class WakeableSleep {
  private wakeCurrent: (() => void) | null = null;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeCurrent === done) this.wakeCurrent = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeCurrent = done;
    });
  }

  /** Ends the sleep in progress, if any. */
  wake(): void {
    this.wakeCurrent?.();
  }
}
