/** An abort signal that follows other signals (and, optionally, a time limit) until it is disposed. */
export interface LinkedSignal {
  signal: AbortSignal;
  /** Lets go of the sources and the timer: call it once the work the signal guarded is over. */
  dispose(): void;
}

/**
 * Aborts when any source aborts (with that source's reason) or after `timeoutMs` (with a `TimeoutError`, as
 * AbortSignal.timeout). AbortSignal.any does the first, but on Node 20 a long-lived source, such as the worker
 * pool's shutdown signal, keeps every signal made from it, and every listener added to those, for as long as it
 * lives: a few kB per action, for the life of the process. Here the links are listeners, removed by dispose.
 */
export function linkSignals(sources: readonly (AbortSignal | undefined)[], timeoutMs?: number): LinkedSignal {
  const controller = new AbortController();
  const linked = sources.filter((source): source is AbortSignal => source !== undefined);
  const onAbort = function (this: AbortSignal): void {
    dispose();
    controller.abort(this.reason);
  };
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          dispose();
          controller.abort(new DOMException(`The operation was aborted due to timeout`, 'TimeoutError'));
        }, timeoutMs);
  function dispose(): void {
    clearTimeout(timer);
    for (const source of linked) source.removeEventListener('abort', onAbort);
  }
  const already = linked.find((source) => source.aborted);
  if (already !== undefined) {
    clearTimeout(timer);
    controller.abort(already.reason);
  } else {
    for (const source of linked) source.addEventListener('abort', onAbort, { once: true });
  }
  return { signal: controller.signal, dispose };
}
