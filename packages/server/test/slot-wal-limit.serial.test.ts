import type { WalflowDatabase } from '@walflow/core';
import { computeHealth, createDatabase, migrate, WalRate, type RunningWalflow } from '@walflow/server';
import { createTestDatabase, startPostgres, waitFor, type CreatedTestDatabase, type StartedPostgres } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, startTestWalflow, testConfig } from './fixtures.js';

const SLOT = 'walflow_lost';
let cluster: StartedPostgres;
let database: CreatedTestDatabase;
let db: Kysely<WalflowDatabase>;
let walflow: RunningWalflow | undefined;

beforeAll(async () => {
  // Its own cluster: the tests limit how much WAL a slot may hold, for the whole server.
  cluster = await startPostgres({ dedicated: true });
  database = await createTestDatabase(cluster.url);
  db = createDatabase(database.url, silentLogger);
});
afterAll(async () => {
  await walflow?.stop();
  await db?.destroy();
  await database?.drop();
  await cluster?.stop();
});

describe('seconds to invalidation', () => {
  it('estimates from the recent WAL rate when max_slot_wal_keep_size bounds the slot', async () => {
    const slotName = SLOT;
    await migrate({ db, slotName, logger: silentLogger });
    const thresholds = testConfig(database.url, slotName).healthThresholds;
    const unbounded = await computeHealth(db, { slotName, thresholds, walRate: new WalRate() });
    expect(unbounded.lag.safeWalSizeBytes).toBeNull();
    await sql`ALTER SYSTEM SET max_slot_wal_keep_size = '4GB'`.execute(db);
    await sql`SELECT pg_reload_conf()`.execute(db);
    try {
      // The reload reaches the server's processes a moment later.
      await waitFor('the limit to apply', async () => (await sql<{ size: string }>`SELECT current_setting('max_slot_wal_keep_size') AS size`.execute(db)).rows[0]?.size === '4GB');
      const walRate = new WalRate();
      const reports = [];
      for (let sample = 0; sample < 3; sample++) {
        await sql`CREATE TABLE IF NOT EXISTS public.wal_filler (n int)`.execute(db);
        await sql`INSERT INTO public.wal_filler SELECT generate_series(1, 20000)`.execute(db);
        reports.push(await waitFor('a bounded slot', async () => {
          const report = await computeHealth(db, { slotName, thresholds, walRate });
          return report.lag.safeWalSizeBytes === null ? undefined : report;
        }));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(reports[0]?.lag.secondsToInvalidation).toBeNull(); // one sample has no rate yet
      expect(reports[2]?.lag.secondsToInvalidation).toBeGreaterThan(0);
    } finally {
      await sql`ALTER SYSTEM RESET max_slot_wal_keep_size`.execute(db);
      await sql`SELECT pg_reload_conf()`.execute(db);
    }
  });
});

describe('a slot invalidated by max_slot_wal_keep_size', () => {
  it('is terminal: the consumer is down saying to run walflow repair, and /health answers 503 with the slot down', async () => {
    walflow = await startTestWalflow(database.url, SLOT);
    await waitFor('streaming', () => walflow!.consumerStatus().state === 'streaming');
    await walflow.stop();
    walflow = undefined;

    // With the slot inactive, WAL past the limit goes at the next checkpoint, and the slot with it.
    await sql`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`.execute(db);
    await sql`SELECT pg_reload_conf()`.execute(db);
    await sql`CREATE TABLE public.filler (n integer, padding text)`.execute(db);
    await waitFor('the slot to be lost', async () => {
      await sql`INSERT INTO public.filler SELECT n, repeat('x', 500) FROM generate_series(1, 20000) AS n`.execute(db);
      await sql`SELECT pg_switch_wal()`.execute(db);
      await sql`CHECKPOINT`.execute(db);
      const { rows } = await sql<{ wal_status: string | null }>`SELECT wal_status FROM pg_replication_slots WHERE slot_name = ${SLOT}`.execute(db);
      return rows[0]?.wal_status === 'lost';
    }, { timeoutMs: 60_000, intervalMs: 0 });

    walflow = await startTestWalflow(database.url, SLOT, { downRecheckMs: 60_000 });
    const status = await waitFor('the consumer to refuse', () => walflow!.consumerStatus().state === 'down' && walflow!.consumerStatus());
    expect(status.reason).toMatch(/was invalidated \(wal_status=lost.*walflow repair/);
    const report = await waitFor('/health to say so', async () => {
      const response = await fetch(`http://127.0.0.1:${walflow!.httpPort}/health`);
      const body = (await response.json()) as { checks: { name: string; state: string; message: string }[] };
      return response.status === 503 && body.checks.some((check) => check.name === 'slot' && check.state === 'down') && body;
    });
    expect(report.checks.find((check) => check.name === 'slot')?.message).toMatch(/invalidated \(wal_status lost\): run walflow repair/);
  });
});
