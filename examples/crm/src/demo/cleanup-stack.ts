/**
 * What the demo started, stopped in reverse order — also after a failure. Every step runs even when an earlier one
 * fails; the failures are reported together at the end.
 */
export class CleanupStack {
  readonly #steps: { what: string; stop: () => Promise<void> }[] = [];
  #running: Promise<void> | undefined;

  /** Registers `stop` for something that just started; once the stack has run (a signal came), stops it at once. */
  defer(what: string, stop: () => Promise<void>): void {
    if (this.#running !== undefined) void stop().catch(() => undefined);
    else this.#steps.push({ what, stop });
  }

  /** Stops everything once: a second call (a signal's, while the demo's own runs) waits for the first. */
  run(): Promise<void> {
    return (this.#running ??= this.#stopAll());
  }

  async #stopAll(): Promise<void> {
    const failures: unknown[] = [];
    const messages: string[] = [];
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      try {
        await step.stop();
      } catch (error) {
        failures.push(error);
        messages.push(`stopping ${step.what} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, messages.join('; '));
  }
}
