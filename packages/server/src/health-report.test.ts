import { describe, expect, it } from 'vitest';
import { runChecks, type HealthThresholds } from './health-report.js';

const thresholds: HealthThresholds = {
  lagSecondsDegraded: 30,
  lagSecondsDown: 300,
  lagBytesDegraded: 1 << 30,
  lagBytesDown: 4 << 30,
  queuedSecondsDegraded: 60,
  deadRunsDegraded: 1,
};

describe('the run checks', () => {
  it('say what was measured, and past a threshold what to do', () => {
    expect(runChecks({ dead: 0, oldestQueuedSeconds: 2 }, thresholds)).toEqual([
      { name: 'oldest_queued_run', state: 'ok', message: 'oldest runnable queued run waits 2.0 s' },
      { name: 'dead_runs', state: 'ok', message: '0 dead runs' },
    ]);
    expect(runChecks({ dead: 3, oldestQueuedSeconds: 61 }, thresholds)).toEqual([
      { name: 'oldest_queued_run', state: 'degraded', message: 'oldest runnable queued run waits 61.0 s: workers are stopped or behind: check the processes of role worker or all, or start more' },
      { name: 'dead_runs', state: 'degraded', message: '3 dead runs: walflow dead-runs list, then retry or discard them once their cause is fixed' },
    ]);
  });
});
