/**
 * A timer that another part of the program can end early: for loops that wait for their next round, or for a
 * reconnect delay, and must react at once to stop() or to news.
 */
export class WakeableSleep {
  private wakeCurrent: (() => void) | null = null;
  /** A wake that came while nothing slept, kept for the next sleep. */
  private woken = false;

  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
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

  /**
   * Ends the sleep in progress, or else the next one as soon as it begins: a stop or news that comes while the
   * loop is busy (connecting, in a round) is not slept through afterwards.
   */
  wake(): void {
    if (this.wakeCurrent) this.wakeCurrent();
    else this.woken = true;
  }
}
