import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { applyTestWorkflow, openMigrated, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();

describe("a process whose WALFLOW_UPDATE_FIELDS refuses an applied workflow's target", () => {
  it('warns as its workers start, naming the workflow and why its runs will fail', async () => {
    const db = await openMigrated(database);
    try {
      await sql`CREATE TABLE public.counters (id text PRIMARY KEY, n integer NOT NULL DEFAULT 0)`.execute(db);
      const counting = { tenant: 'policy', trigger: { event: 'thing.counted' }, actions: [{ type: 'update_field' as const, table: 'public.counters', key: { column: 'id', value: 'a' }, column: 'n', increment: 1 }] };
      await applyTestWorkflow(db, { ...counting, name: 'count' }, { updateFields: ['public.counters.n'] });
      await applyTestWorkflow(db, { ...counting, name: 'retired', status: 'disabled' }, { updateFields: ['public.counters.n'] });
    } finally {
      await db.destroy();
    }
    const warnings: { msg: string; workflow?: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line) as (typeof warnings)[number]) });
    const walflow = await startTestWalflow(database.url, database.slotName, { role: 'worker', updateFields: [] }, logger);
    await walflow.stop();
    const refused = warnings.filter((warning) => warning.msg.includes('will fail the runs'));
    expect(refused).toEqual([expect.objectContaining({ workflow: 'count', msg: expect.stringContaining('may not write public.counters.n') })]);
  });
});
