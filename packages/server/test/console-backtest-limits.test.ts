import { setTimeout as sleep } from 'node:timers/promises';
import type { WalflowDatabase } from '@walflow/core';
import { emit } from '@walflow/outbox';
import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_TOKEN, ConsoleClient, startConsoleWalflow, T1_TOKEN, T2_TOKEN } from './console-fixtures.js';
import { applyTestWorkflow, holdOpen, waitForLockWait } from './fixtures.js';

/**
 * A backtest holds one of the console's few connections while it runs. Here the event log is locked while a
 * backtest counts its range, so the backtest is held for as long as the test likes, then goes on.
 */
const TIME_LIMIT_MS = 1_000;
const database = useTestDatabase();
let walflow: RunningWalflow;
let db: Kysely<WalflowDatabase>;
let client: ConsoleClient;
const logged: string[] = [];

beforeAll(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => logged.push((JSON.parse(line) as { msg: string }).msg) });
  walflow = await startConsoleWalflow(database.url, database.slotName, { consoleBacktestTimeoutMs: TIME_LIMIT_MS }, logger);
  db = walflow.db;
  client = new ConsoleClient(walflow.httpPort!);
  await applyTestWorkflow(db, { tenant: 't1', name: 'notify-order', trigger: { event: 'order.placed' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'order' }] });
  const id = await db.transaction().execute((trx) => emit(trx, { type: 'order.placed', tenantId: 't1', payload: { orderId: 'o-1' } }));
  await waitFor('the event to be recorded', async () => (await db.selectFrom('walflow.events').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
});
afterAll(async () => {
  await walflow?.stop();
});

const backtestForm = { from: '-10m', to: 'now', workflow: '', type: 'order.*', tenant: 't1' };

/** Locks the event log; the backtest sent meanwhile waits at its count until released. */
async function withBacktestHeld(send: () => Promise<unknown>, whileHeld: () => Promise<void>): Promise<void> {
  const held = await holdOpen(db, sql`LOCK TABLE walflow.events IN ACCESS EXCLUSIVE MODE`);
  try {
    void send().catch(() => undefined);
    await waitForLockWait(db, 'the backtest to wait for the event log', '%count(*)%');
    await whileHeld();
  } finally {
    await held.release();
  }
}

describe('a console backtest', () => {
  it('stops at its time limit and says so', async () => {
    let answer: Promise<{ status: number; text: string }> | undefined;
    await withBacktestHeld(
      () => (answer = client.request('/console/workflows/backtest', { form: backtestForm, headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } })),
      () => sleep(TIME_LIMIT_MS * 1.5),
    );
    const response = await answer!;
    expect(response.status).toBe(503);
    expect(response.text).toContain('the backtest was stopped after 1 s (WALFLOW_CONSOLE_BACKTEST_TIMEOUT_MS)');
    expect(response.text).not.toContain('events replayed');
  });

  it('stops a statement that outlasts its time limit, not only at the next page', async () => {
    let answer: Promise<{ status: number; text: string }> | undefined;
    let answered: { status: number; text: string } | 'still waiting' = 'still waiting';
    await withBacktestHeld(
      () => (answer = client.request('/console/workflows/backtest', { form: backtestForm, headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } })),
      // The event log stays locked meanwhile: only a cancelled statement lets the backtest answer.
      async () => {
        answered = await Promise.race([answer!, sleep(TIME_LIMIT_MS * 4).then(() => 'still waiting' as const)]);
      },
    );
    expect(answered).toMatchObject({ status: 503, text: expect.stringContaining('the backtest was stopped after 1 s') });
  });

  it('runs one at a time per scope, and at most two in all, refusing the next with 429 rather than wait for a connection', async () => {
    let first: Promise<{ status: number; text: string }> | undefined;
    let refused: { status: number; text: string } | undefined;
    await withBacktestHeld(
      () => (first = client.request('/console/workflows/backtest', { form: backtestForm, headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } })),
      async () => {
        refused = await client.request('/console/workflows/backtest', { form: backtestForm, headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } });
      },
    );
    expect(refused).toMatchObject({ status: 429, text: expect.stringContaining('a backtest is running for this scope already') });
    expect((await first!).status).toBe(200);
    // Its slot is given back: the next one runs.
    expect((await client.request('/console/workflows/backtest', { form: backtestForm, headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } })).status).toBe(200);
  });

  it('runs one per scope side by side, two tenants at once, and refuses a third scope while two run', async () => {
    const held = await holdOpen(db, sql`LOCK TABLE walflow.events IN ACCESS EXCLUSIVE MODE`);
    const send = (token: string) => client.request('/console/workflows/backtest', { form: backtestForm, headers: { authorization: `Bearer ${token}` } });
    let running: Promise<{ status: number }>[] = [];
    try {
      running = [send(T1_TOKEN), send(T2_TOKEN)];
      await waitFor('both tenants’ backtests to wait for the event log', async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%count(*)%'`.execute(db);
        return rows[0]!.n >= 2;
      });
      expect(await send(CONSOLE_TOKEN)).toMatchObject({ status: 429, text: expect.stringContaining('or 2 in all') });
    } finally {
      await held.release();
    }
    expect((await Promise.all(running)).map((answer) => answer.status)).toEqual([200, 200]);
  });

  it('stops when its client leaves', async () => {
    const leaving = new AbortController();
    const body = new URLSearchParams(backtestForm);
    await withBacktestHeld(
      () => fetch(`${client.origin}/console/workflows/backtest`, { method: 'POST', body, headers: { authorization: `Bearer ${CONSOLE_TOKEN}` }, signal: leaving.signal }),
      async () => {
        leaving.abort();
        await sleep(100); // the console sees the connection close
      },
    );
    await waitFor('the backtest to stop', () => logged.includes('console backtest stopped: its client left'));
  });
});
