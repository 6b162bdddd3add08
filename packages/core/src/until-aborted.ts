/**
 * The promise's outcome, or a rejection as soon as the signal aborts (with `reasonOf()`, by default the signal's
 * reason), whichever comes first. The listener goes once the promise settles, so a long-lived signal gathers none.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, reasonOf: () => Error = () => abortReason(signal)): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(reasonOf());
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
