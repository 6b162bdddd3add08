import { applyWorkflow } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { createDatabase, loadConfig, migrate, startWalflow, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWalflow } from './walflow-process.js';

const database = useTestDatabase();
const logger = pino({ level: 'silent' });
let walflow: RunningWalflow;
let env: Record<string, string>;

beforeAll(async () => {
  env = { DATABASE_URL: database.url, WALFLOW_SLOT: database.slotName, WALFLOW_HTTP_PORT: '0', WALFLOW_LOG_LEVEL: 'silent', WALFLOW_WORKER_POLL_MS: '100' };
  const db = createDatabase(database.url, logger);
  await migrate({ db, slotName: database.slotName, logger });
  await db.destroy();
  walflow = await startWalflow(loadConfig(env), logger);
});
afterAll(async () => {
  await walflow?.stop();
});

describe('walflow explain', () => {
  it('shows the decisions with their reasons (a cooldown with its end), the runs and the chain both ways', async () => {
    const { db } = walflow;
    await applyWorkflow(db, { tenant: 'x', name: 'greet', trigger: { event: 'recruit.graduated_to_agent' }, cooldown: { seconds: 600 }, actions: [{ type: 'emit_event', event: 'agent.welcomed' }] });
    const first = await emit(db, { type: 'recruit.graduated_to_agent', tenantId: 'x', aggregateType: 'recruit', aggregateId: 'r1', payload: {} });
    const second = await emit(db, { type: 'recruit.graduated_to_agent', tenantId: 'x', aggregateType: 'recruit', aggregateId: 'r2', payload: {} });
    const welcomed = await waitFor('the follow-up event', () => db.selectFrom('walflow.events').select('id').where('event_type', '=', 'agent.welcomed').executeTakeFirst());
    await waitFor('the second decision', () => db.selectFrom('walflow.decisions').select('id').where('event_id', '=', second).executeTakeFirst());

    const fired = await runWalflow(['explain', first], env);
    expect(fired.code).toBe(0);
    expect(fired.output).toMatch(/greet v1: fired/);
    expect(fired.output).toMatch(/succeeded after 1 attempt/);
    expect(fired.output).toMatch(/action 0 emit_event: succeeded/);
    expect(fired.output).toContain(`led to\n  ${welcomed.id}  agent.welcomed`);

    const cooled = await runWalflow(['explain', second, '--json'], env);
    const explanation = JSON.parse(cooled.output) as { decisions: { outcome: string; detail: { until: string } }[] };
    expect(explanation.decisions).toEqual([expect.objectContaining({ outcome: 'cooldown', detail: expect.objectContaining({ until: expect.any(String), seconds: 600 }) })]);

    const effect = await runWalflow(['explain', welcomed.id], env);
    expect(effect.output).toContain(`caused by\n  ${first}  recruit.graduated_to_agent`);

    const missing = await runWalflow(['explain', '00000000-0000-0000-0000-000000000000'], env);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/no recorded event/);
  });
});

describe('walflow events list', () => {
  it('lists recent events newest first, filtered by type prefix and tenant', async () => {
    const { db } = walflow;
    for (const type of ['policy.approved', 'policy.cancelled', 'user.login']) await emit(db, { type, tenantId: 'list', payload: {} });
    await waitFor('the events', async () => (await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'list').execute()).length === 3);
    const listed = await runWalflow(['events', 'list', '--since', '-10m', '--type', 'policy.*', '--tenant', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.output) as { event_type: string }[]).map((row) => row.event_type)).toEqual(['policy.cancelled', 'policy.approved']);
    const bad = await runWalflow(['events', 'list', '--since', 'yesterday'], env);
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(/not a time/);
  });
});
