import { describe, expect, it } from 'vitest';
import { partsOf } from './process-role.js';

describe('partsOf', () => {
  it('runs everything for all, and no workers when their concurrency is 0', () => {
    expect(partsOf('all', 4)).toEqual({ consumer: true, workers: true, http: true, console: true });
    expect(partsOf('all', 0)).toEqual({ consumer: true, workers: false, http: true, console: true });
  });

  it('splits consumer, worker and http', () => {
    expect(partsOf('consumer', 4)).toEqual({ consumer: true, workers: false, http: true, console: true });
    expect(partsOf('worker', 4)).toEqual({ consumer: false, workers: true, http: false, console: false });
    // With WALFLOW_HTTP_PORT set, for its own metrics.
    expect(partsOf('worker', 4, true)).toEqual({ consumer: false, workers: true, http: true, console: false });
    expect(partsOf('http', 4)).toEqual({ consumer: false, workers: false, http: true, console: true });
  });

  it('refuses a worker that could run nothing', () => {
    expect(() => partsOf('worker', 0)).toThrow(/role worker needs WALFLOW_WORKER_CONCURRENCY of at least 1/);
  });
});
