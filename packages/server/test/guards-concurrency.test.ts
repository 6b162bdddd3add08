import { randomBytes, randomUUID } from 'node:crypto';
import { parseLsn, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { claimRuns, Dispatcher, executeRun } from '@walflow/executor';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, COMMITTED_XID, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let lsn = 0x1000;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger, { max: 12 });
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
});
afterAll(async () => {
  await db.destroy();
});

/** A committed event as the stream would hand it over, one second of commit time apart. */
function event(tenantId: string, type: string, second: number): EventEnvelope {
  lsn += 0x100;
  return {
    id: randomUUID(),
    type,
    tenantId,
    aggregateType: null,
    aggregateId: null,
    payload: {},
    metadata: {},
    committedAt: new Date(Date.UTC(2026, 10, 26, 12, 0, second)).toISOString(),
    commitLsn: parseLsn(`0/${lsn.toString(16)}`),
    position: 0,
    xid: COMMITTED_XID,
  };
}

async function outcomes(tenant: string): Promise<Record<string, number>> {
  const { rows } = await sql<{ outcome: string; n: string }>`
    SELECT outcome, count(*) AS n FROM walflow.decisions WHERE tenant_id = ${tenant} GROUP BY outcome`.execute(db);
  return Object.fromEntries(rows.map((row) => [row.outcome, Number(row.n)]));
}

/** Four dispatchers (think: live stream and replays) recording batches of the same workflow at once. */
async function dispatchConcurrently(tenant: string, type: string, events: number): Promise<void> {
  const dispatchers = Array.from({ length: 4 }, () => new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }));
  const all = Array.from({ length: events }, (_, n) => event(tenant, type, n % 50));
  await Promise.all(
    dispatchers.map(async (dispatcher, index) => {
      const mine = all.filter((_, n) => n % dispatchers.length === index);
      for (let start = 0; start < mine.length; start += 3) {
        await dispatcher.dispatch({ events: mine.slice(start, start + 3), parked: [], checkpoint: null });
      }
    }),
  );
}

describe('guards under concurrent dispatch', () => {
  it('never lets more runs through than a rate limit allows', async () => {
    await applyTestWorkflow(db, { tenant: 'rl', name: 'seven-per-hour', trigger: { event: 'user.login' }, rateLimits: [{ limit: 7, periodSeconds: 3600 }], actions: [{ type: 'emit_event', event: 'x.y' }] });
    await dispatchConcurrently('rl', 'user.login', 40);
    expect(await outcomes('rl')).toEqual({ fired: 7, rate_limited: 33 });
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = 'rl'`.execute(db);
    expect(rows[0]?.n).toBe('7');
  });

  it('holds a cooldown to the microsecond of the commit that started it', async () => {
    await applyTestWorkflow(db, { tenant: 'cd-us', name: 'minute', trigger: { event: 'user.login' }, cooldown: { seconds: 60 }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    const at = (committedAt: string): EventEnvelope => ({ ...event('cd-us', 'user.login', 0), committedAt });
    const dispatcher = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    // Half a millisecond before the cooldown's end, in the same millisecond as it; then at its end exactly.
    for (const committedAt of ['2026-11-26T12:00:00.000700Z', '2026-11-26T12:01:00.000200Z', '2026-11-26T12:01:00.000700Z']) {
      await dispatcher.dispatch({ events: [at(committedAt)], parked: [], checkpoint: null });
    }
    const { rows } = await sql<{ outcome: string; reason: string }>`
      SELECT d.outcome, d.reason FROM walflow.decisions d JOIN walflow.events e ON e.id = d.event_id
       WHERE d.tenant_id = 'cd-us' ORDER BY e.committed_at`.execute(db);
    expect(rows).toEqual([
      { outcome: 'fired', reason: 'trigger user.login matched' },
      { outcome: 'cooldown', reason: 'in cooldown until 2026-11-26T12:01:00.000700Z' },
      { outcome: 'fired', reason: 'trigger user.login matched' },
    ]);
  });

  it('fires once per cooldown window however the events are split between dispatchers', async () => {
    await applyTestWorkflow(db, { tenant: 'cd', name: 'hourly', trigger: { event: 'user.login' }, cooldown: { seconds: 3600 }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    await dispatchConcurrently('cd', 'user.login', 24);
    expect(await outcomes('cd')).toEqual({ fired: 1, cooldown: 23 });
  });
});

describe('guard keys of any length', () => {
  it('records and claims runs whose cooldown and concurrency keys are kilobytes of text that does not compress', async () => {
    // PostgreSQL refuses an index entry beyond 2,704 bytes: such a concurrency key failed every claim reaching it.
    await applyTestWorkflow(db, {
      tenant: 'long-keys',
      name: 'per-address',
      trigger: { event: 'user.login' },
      cooldown: { seconds: 3600, key: 'event.payload.address' },
      concurrency: { limit: 1, key: 'event.payload.address' },
      actions: [{ type: 'emit_event', event: 'x.y' }],
    });
    const addresses = [randomBytes(3000).toString('base64'), randomBytes(3000).toString('base64')];
    const events = addresses.map((address, n) => ({ ...event('long-keys', 'user.login', n), payload: { address } }));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events, parked: [], checkpoint: null });
    expect(await outcomes('long-keys')).toEqual({ fired: 2 });
    const claimed = (await claimRuns(db, 'long-keys/0', 100, 60_000)).filter((run) => run.event.tenantId === 'long-keys');
    expect(claimed).toHaveLength(2);
    const keys = await db.selectFrom('walflow.workflow_runs').select('concurrency_key').where('tenant_id', '=', 'long-keys').execute();
    expect(new Set(keys.map((row) => row.concurrency_key)).size).toBe(2);
  });
});

describe('workflow lifecycle', () => {
  it('cancels, never executes, the queued runs of a deleted workflow', async () => {
    const workflowId = await applyTestWorkflow(db, { tenant: 'gone', name: 'to-delete', trigger: { event: 'policy.approved' }, actions: [{ type: 'create_notification', recipient: 'u1', title: 'x' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [event('gone', 'policy.approved', 1)], parked: [], checkpoint: null });
    await db.deleteFrom('walflow.workflows').where('id', '=', workflowId).execute();
    const claimed = (await claimRuns(db, 'test-worker', 100, 60_000)).filter((run) => run.workflowId === workflowId);
    expect(claimed).toHaveLength(1);
    const result = await executeRun(claimed[0]!, 'test-worker', { db, logger: silentLogger, runtime: { secrets: new Map(), webhookAllowHosts: [] } });
    expect(result).toBe('cancelled');
    const run = await db.selectFrom('walflow.workflow_runs').selectAll().where('workflow_id', '=', workflowId).executeTakeFirstOrThrow();
    expect(run).toMatchObject({ status: 'cancelled', last_error: 'workflow was deleted' });
    expect(await db.selectFrom('walflow.notifications').select('id').where('tenant_id', '=', 'gone').execute()).toEqual([]);
  });
});
