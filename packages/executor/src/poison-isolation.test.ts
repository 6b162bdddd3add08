import { parseLsn, WalflowError, type BatchDispatcher, type DispatchBatch, type EventEnvelope } from '@walflow/core';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { PoisonIsolatingDispatcher } from './poison-isolation.js';

function event(n: number): EventEnvelope {
  return {
    id: `0193a5b0-0000-7000-8000-${String(n).padStart(12, '0')}`,
    type: 'policy.approved',
    tenantId: 'isolation',
    aggregateType: null,
    aggregateId: null,
    payload: { n },
    metadata: {},
    committedAt: '2026-11-28T00:00:00.000000Z',
    commitLsn: parseLsn('0/100'),
    position: n,
    xid: '9',
  };
}

/** A dispatcher that fails every batch holding event 2 with `error`, and records the others. */
function failingOnEvent2(error: Error): { dispatcher: BatchDispatcher; batches: DispatchBatch[] } {
  const batches: DispatchBatch[] = [];
  return {
    batches,
    dispatcher: {
      dispatch(batch) {
        batches.push(batch);
        if (batch.events.some((candidate) => candidate.position === 2)) return Promise.reject(error);
        return Promise.resolve({ recorded: batch.events.length, recordedEvents: batch.events, duplicates: 0, runsQueued: 0, parked: batch.parked.length });
      },
    },
  };
}

const logger = pino({ level: 'silent' });
const batch = (): DispatchBatch => ({ events: [0, 1, 2, 3].map(event), parked: [], checkpoint: null });

describe('PoisonIsolatingDispatcher', () => {
  it('parks the one event that fails on its own and records the rest', async () => {
    const { dispatcher } = failingOnEvent2(new Error('poison'));
    const result = await new PoisonIsolatingDispatcher(dispatcher, logger).dispatch(batch());
    expect(result).toMatchObject({ recorded: 3, parked: 1 });
    expect(result.recordedEvents.map((recorded) => recorded.position)).toEqual([0, 1, 3]);
  });

  it("parks nothing when a writer's commit is not visible yet: the batch goes up whole, to be delivered again", async () => {
    const notVisible = new WalflowError('commit_not_visible', '1 transaction(s) whose commit was decoded are still not visible after 10000 ms');
    const { dispatcher, batches } = failingOnEvent2(notVisible);
    await expect(new PoisonIsolatingDispatcher(dispatcher, logger).dispatch(batch())).rejects.toBe(notVisible);
    expect(batches).toHaveLength(1);
  });

  it('parks nothing when the database refuses the connection: the batch goes up whole', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { dispatcher, batches } = failingOnEvent2(refused);
    await expect(new PoisonIsolatingDispatcher(dispatcher, logger).dispatch(batch())).rejects.toBe(refused);
    expect(batches).toHaveLength(1);
  });
});
