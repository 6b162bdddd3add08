import { parseLsn, type DispatchBatch, type EventEnvelope } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import type { HealthReport } from './health-report.js';
import { MAX_EVENT_TYPE_LABELS, OTHER_EVENT_TYPES, WalflowMetrics } from './metrics.js';

function batchOf(types: string[]): DispatchBatch {
  const events: EventEnvelope[] = types.map((type, n) => ({
    id: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`,
    type,
    tenantId: 't1',
    aggregateType: null,
    aggregateId: null,
    payload: {},
    metadata: {},
    committedAt: new Date().toISOString(),
    commitLsn: parseLsn('0/100'),
    position: n,
    xid: '7',
  }));
  return { events, parked: [], checkpoint: null };
}

describe('walflow_events_recorded_total', () => {
  it('counts the first types by name and the rest together, so an application naming types at will cannot grow the series without end', async () => {
    const metrics = new WalflowMetrics();
    const types = Array.from({ length: MAX_EVENT_TYPE_LABELS + 100 }, (_, n) => `order.kind_${n}`);
    // Twice each: a type counted by name stays so, one counted with the others stays there.
    for (let round = 0; round < 2; round++) {
      const batch = batchOf(types);
      metrics.recordBatch({ recorded: types.length, recordedEvents: batch.events, duplicates: 0, runsQueued: 0, parked: 0, decisions: {} }, batch);
    }
    const { values } = await metrics.registry.getSingleMetric('walflow_events_recorded_total')!.get();
    expect(values).toHaveLength(MAX_EVENT_TYPE_LABELS + 1);
    const byType = new Map(values.map((value) => [value.labels.type, value.value]));
    expect(byType.get('order.kind_0')).toBe(2);
    expect(byType.get(`order.kind_${MAX_EVENT_TYPE_LABELS - 1}`)).toBe(2);
    expect(byType.has(`order.kind_${MAX_EVENT_TYPE_LABELS}`)).toBe(false);
    expect(byType.get(OTHER_EVENT_TYPES)).toBe(200);
  });
});

describe('walflow_events_recorded_total and the commit-to-record latency', () => {
  it('count only the events recorded: not a redelivery, nor an event parked instead, wherever it stood in the batch', async () => {
    const metrics = new WalflowMetrics();
    const batch = batchOf(['order.placed', 'order.poison', 'order.placed', 'order.redelivered']);
    const [first, , third] = batch.events;
    metrics.recordBatch({ recorded: 2, recordedEvents: [first!, third!], duplicates: 1, runsQueued: 0, parked: 1, decisions: {} }, batch);
    const { values } = await metrics.registry.getSingleMetric('walflow_events_recorded_total')!.get();
    expect(values.map((value) => [value.labels.type, value.value])).toEqual([['order.placed', 2]]);
    expect((await metrics.render()).text).toMatch(/^walflow_commit_to_record_seconds_count 2$/m);
  });
});

describe('walflow_health_status', () => {
  it('reads down until the first health report, as /health does', async () => {
    expect((await new WalflowMetrics().render()).text).toMatch(/^walflow_health_status 2$/m);
  });
});

describe('the counters of a recorded batch', () => {
  it('add its redeliveries, parked rows and queued runs', async () => {
    const metrics = new WalflowMetrics();
    const batch = batchOf(['order.placed']);
    for (let round = 0; round < 2; round++) metrics.recordBatch({ recorded: 1, recordedEvents: batch.events, duplicates: 2, runsQueued: 3, parked: 1, decisions: { fired: 3 } }, batch);
    const { text } = await metrics.render();
    expect(text).toMatch(/^walflow_events_duplicate_total 4$/m);
    expect(text).toMatch(/^walflow_rows_parked_total 2$/m);
    expect(text).toMatch(/^walflow_runs_queued_total 6$/m);
  });
});

describe('the gauges that follow the health report', () => {
  const report = (status: HealthReport['status']): HealthReport => ({
    status,
    role: 'leader',
    slot: { name: 'walflow', active: true, walStatus: 'reserved' },
    lag: { bytes: 10, seconds: 1, retainedBytes: 20, safeWalSizeBytes: null, secondsToInvalidation: null },
    runs: { queued: 7, running: 2, dead: 4, oldestQueuedSeconds: 0 },
    deadLetters: 5,
    lastEventAt: null,
    checks: [],
    at: new Date().toISOString(),
  });

  it('read its run counts by status, its open dead letters, and its status as 0, 1 or 2', async () => {
    const metrics = new WalflowMetrics();
    const states: [HealthReport['status'], number][] = [['ok', 0], ['degraded', 1], ['down', 2]];
    for (const [status, gauge] of states) {
      metrics.updateFromHealth(report(status), true);
      const { text } = await metrics.render();
      expect(text).toMatch(new RegExp(`^walflow_health_status ${gauge}$`, 'm'));
      expect(text).toMatch(/^walflow_runs\{status="queued"\} 7$/m);
      expect(text).toMatch(/^walflow_runs\{status="running"\} 2$/m);
      expect(text).toMatch(/^walflow_runs\{status="dead"\} 4$/m);
      expect(text).toMatch(/^walflow_dead_letters 5$/m);
    }
  });
});
