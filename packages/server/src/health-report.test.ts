import { describe, expect, it } from 'vitest';
import { consumerCheck, runChecks, type HealthThresholds } from './health-report.js';

const thresholds: HealthThresholds = {
  lagSecondsDegraded: 30,
  lagSecondsDown: 300,
  lagBytesDegraded: 1 << 30,
  lagBytesDown: 4 << 30,
  queuedSecondsDegraded: 60,
  deadRunsDegraded: 1,
  deadLettersDegraded: 1,
  reconnectingSecondsDown: 300,
};

describe('the run checks', () => {
  it('say what was measured, and past a threshold what to do', () => {
    expect(runChecks({ dead: 0, oldestQueuedSeconds: 2, deadLetters: 0 }, thresholds)).toEqual([
      { name: 'oldest_queued_run', state: 'ok', message: 'oldest runnable queued run waits 2.0 s' },
      { name: 'dead_runs', state: 'ok', message: '0 dead runs' },
      { name: 'dead_letters', state: 'ok', message: '0 open dead letters' },
    ]);
    expect(runChecks({ dead: 3, oldestQueuedSeconds: 61, deadLetters: 1 }, thresholds)).toEqual([
      { name: 'oldest_queued_run', state: 'degraded', message: 'oldest runnable queued run waits 61.0 s: workers are stopped or behind: check the processes of role worker or all, or start more' },
      { name: 'dead_runs', state: 'degraded', message: '3 dead runs: walflow dead-runs list, then retry or discard them once their cause is fixed' },
      {
        name: 'dead_letters',
        state: 'degraded',
        message: '1 open dead letter: their events reach no workflow: walflow dead-letters list, then retry or discard them once their cause is fixed',
      },
    ]);
    // At the threshold, not only above it.
    expect(runChecks({ dead: 1, oldestQueuedSeconds: 0, deadLetters: 0 }, thresholds)[1]).toEqual({
      name: 'dead_runs',
      state: 'degraded',
      message: '1 dead run: walflow dead-runs list, then retry or discard them once their cause is fixed',
    });
  });
});

describe('the consumer check', () => {
  it('is down once the leader has reconnected without streaming for longer than its threshold', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    const reconnecting = (secondsAgo: number) => ({ state: 'reconnecting' as const, role: 'leader' as const, reason: 'replication slot "walflow" is active for PID 42', since: new Date(now - secondsAgo * 1000) });
    expect(consumerCheck(reconnecting(299), thresholds, now)).toEqual({
      name: 'consumer',
      state: 'degraded',
      message: 'reconnecting since 2026-11-29T11:55:01.000Z: replication slot "walflow" is active for PID 42',
    });
    expect(consumerCheck(reconnecting(300), thresholds, now)).toMatchObject({ state: 'down', message: expect.stringContaining('no attempt has streamed since') });
    expect(consumerCheck({ state: 'streaming', role: 'leader', since: new Date(now - 3_600_000) }, thresholds, now).state).toBe('ok');
  });
});
