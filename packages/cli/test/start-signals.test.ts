import { useTestDatabase, waitFor } from '@walflow/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { openMigrated } from '../../server/test/fixtures.js';
import { holdConnectionsNamed, type HoldingProxy } from '../../server/test/held-connections.js';
import { spawnWalflow, type WalflowChild } from './walflow-process.js';

const database = useTestDatabase();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('walflow start and signals', () => {
  it('stops cleanly on a SIGTERM that arrives while it is still starting', async () => {
    const db = await openMigrated(database);
    await db.destroy();
    // walflow's own sessions open slowly: start-up waits at its first query.
    const proxy: HoldingProxy = await holdConnectionsNamed(database.url, 'walflow');
    cleanups.push(() => proxy.close());
    const child: WalflowChild = spawnWalflow(['start'], {
      DATABASE_URL: proxy.url,
      WALFLOW_SLOT: database.slotName,
      WALFLOW_HTTP_PORT: '0',
      WALFLOW_HTTP_HOST: '127.0.0.1',
      WALFLOW_LOG_LEVEL: 'info',
    });
    cleanups.push(() => child.kill('SIGKILL'));
    await waitFor('walflow start to open its first session', () => proxy.held() > 0, { timeoutMs: 30_000 });

    child.kill('SIGTERM');
    await waitFor('walflow to take the signal', () => child.output().includes('shutting down') || child.process.exitCode !== null || child.process.signalCode !== null);
    expect(child.process.signalCode).toBeNull();
    proxy.release();
    expect(await child.exited).toBe(0);
    expect(child.output()).toContain('walflow started');
    expect(child.output()).toContain('walflow stopped');
  });
});
