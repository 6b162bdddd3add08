import type { BatchDispatcher, DispatchBatch, DispatchResult } from '@walflow/core';

/** Measures each dispatch, which the consumer's onBatch callback cannot: it only sees the result. */
export class TimedDispatcher implements BatchDispatcher {
  constructor(
    private readonly inner: BatchDispatcher,
    private readonly observe: (seconds: number) => void,
  ) {}

  async dispatch(batch: DispatchBatch): Promise<DispatchResult> {
    const started = performance.now();
    const result = await this.inner.dispatch(batch);
    this.observe((performance.now() - started) / 1000);
    return result;
  }
}
