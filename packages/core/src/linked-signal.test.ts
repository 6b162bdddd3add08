import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { linkSignals } from './linked-signal.js';

describe('linkSignals', () => {
  it("aborts with the first source's reason, and with a TimeoutError once its time is up", async () => {
    const lease = new AbortController();
    const linked = linkSignals([lease.signal, undefined]);
    lease.abort(new Error('lease lost'));
    expect(linked.signal.reason).toEqual(new Error('lease lost'));

    const timed = linkSignals([new AbortController().signal], 20);
    await new Promise((resolve) => timed.signal.addEventListener('abort', resolve));
    expect((timed.signal.reason as Error).name).toBe('TimeoutError');
  });

  it('is aborted from the start when a source already is', () => {
    const source = new AbortController();
    source.abort('gone');
    expect(linkSignals([source.signal], 10).signal.reason).toBe('gone');
  });

  it('once disposed, leaves nothing on a long-lived source and does not abort', async () => {
    const shutdown = new AbortController();
    const linked = linkSignals([shutdown.signal], 10);
    linked.dispose();
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    shutdown.abort();
    expect(linked.signal.aborted).toBe(false);
  });

  it('lets go of every signal it made from a long-lived source, listeners and all (AbortSignal.any does not on Node 20)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const shutdown = new AbortController();
    const made: WeakRef<AbortSignal>[] = [];
    for (let index = 0; index < 200; index++) {
      // As a run and its action link them: the run's signal to the pool's shutdown, the action's to the run's.
      const run = linkSignals([new AbortController().signal, shutdown.signal]);
      const action = linkSignals([run.signal], 1);
      action.signal.addEventListener('abort', () => undefined);
      made.push(new WeakRef(run.signal), new WeakRef(action.signal));
      action.dispose();
      run.dispose();
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    // The last ones made may still be held by the engine's registers.
    expect(made.filter((signal) => signal.deref() !== undefined).length).toBeLessThanOrEqual(2);
  });
});
