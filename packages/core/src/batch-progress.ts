/**
 * How far the first attempt at recording a batch got, for the batch after it, which is recorded at the same
 * time and must come after it in everything that orders: its events take a later transaction id (the JetStream
 * sink publishes in that order), its guards read this batch's effects, it commits later. Each step settles once;
 * a failed attempt rejects what is not settled yet, and then the batch after records nothing.
 */
export class BatchProgress {
  private readonly insertedStep = new Step();
  private readonly committedStep = new Step();
  /** Resolves once the batch's events are inserted: its transaction holds its id. */
  readonly recorded = this.insertedStep.promise;
  /** Resolves once the batch's transaction committed. */
  readonly committed = this.committedStep.promise;
  private outcome: 'pending' | 'committed' | 'failed' = 'pending';

  /** Whether the attempt failed before it committed: a batch that starts after that cannot record beside it. */
  get failed(): boolean {
    return this.outcome === 'failed';
  }

  markRecorded(): void {
    this.insertedStep.resolve();
  }

  markCommitted(): void {
    if (this.outcome === 'pending') this.outcome = 'committed';
    this.insertedStep.resolve();
    this.committedStep.resolve();
  }

  markFailed(error: unknown): void {
    if (this.outcome === 'pending') this.outcome = 'failed';
    const reason = error instanceof Error ? error : new Error(String(error));
    this.insertedStep.reject(reason);
    this.committedStep.reject(reason);
  }
}

/** A promise settled from outside, once; later calls change nothing. */
class Step {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Nobody may be waiting (the last batch of a session): the dispatch itself reports its failure.
    this.promise.catch(() => {});
  }
}
