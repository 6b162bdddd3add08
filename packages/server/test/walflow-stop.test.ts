import { WorkerPool } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { describe, expect, it, vi } from 'vitest';
import { startTestWalflow } from './fixtures.js';

const database = useTestDatabase();

describe('stopping walflow', () => {
  it('stops every part and closes its pool when one part fails to stop, then reports that failure', async () => {
    const walflow = await startTestWalflow(database.url, database.slotName);
    await waitFor('the stream', () => walflow.consumerStatus().state === 'streaming');
    const healthz = `http://127.0.0.1:${walflow.httpPort}/healthz`;
    expect((await fetch(healthz)).status).toBe(200);
    // A part whose stop rejects (here the workers, once they did stop): the parts after it must stop all the same.
    const failing = vi.spyOn(WorkerPool.prototype, 'stop').mockImplementationOnce(async function (this: WorkerPool, graceMs?: number) {
      failing.mockRestore();
      await this.stop(graceMs);
      throw new Error('could not hand runs back');
    });
    try {
      const stopped = await walflow.stop().then(() => null, (error: unknown) => error);
      expect(stopped).toBeInstanceOf(AggregateError);
      expect(stopped).toMatchObject({ message: 'walflow did not stop cleanly: workers failed', errors: [new Error('could not hand runs back')] });
    } finally {
      failing.mockRestore();
    }
    await expect(fetch(healthz)).rejects.toThrow();
    await expect(sql`SELECT 1`.execute(walflow.db)).rejects.toThrow(/destroyed/);
  });
});
