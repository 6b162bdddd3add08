import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase, type TestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, expect } from 'vitest';
import { silentLogger } from '../../../packages/server/test/fixtures.js';
import { createCrmDatabase } from '../src/crm-database.js';
import { migrateCrm } from '../src/migrate-crm.js';
import type { CrmDatabase } from '../src/schema.js';
import { TENANT } from '../src/tenant.js';

export interface CrmTestDatabase {
  database: TestDatabase;
  /** The application's handle (readable once beforeAll has run). */
  crm: () => Kysely<CrmDatabase>;
  /** walflow's tables, to see what was emitted and recorded. */
  walflow: () => Kysely<WalflowDatabase>;
}

/** A test file's database with the walflow schema and then the crm schema migrated (the trigger needs walflow.emit). */
export function useCrmDatabase(): CrmTestDatabase {
  const database = useTestDatabase({ prefix: 'crm_test' });
  let crm: Kysely<CrmDatabase> | undefined;
  let walflow: Kysely<WalflowDatabase> | undefined;
  beforeAll(async () => {
    walflow = createDatabase(database.url, silentLogger);
    await migrate({ db: walflow, slotName: database.slotName, logger: silentLogger });
    crm = createCrmDatabase(database.url);
    await migrateCrm(crm);
  });
  afterAll(async () => {
    await crm?.destroy();
    await walflow?.destroy();
  });
  const required = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useCrmDatabase(): the handles exist once beforeAll has run');
    return value;
  };
  return { database, crm: () => required(crm), walflow: () => required(walflow) };
}

export interface OutboxRow {
  event_type: string;
  aggregate_id: string | null;
  payload: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/**
 * The outbox rows `work` left behind: what it emitted and committed (walflow is not running, so they stay). Ordered
 * by transaction, then type: UUIDv7 ids order rows of one millisecond at random. Every one is the agency's: an event
 * of another tenant would reach none of its workflows.
 */
export async function emittedBy(walflow: Kysely<WalflowDatabase>, work: () => Promise<unknown>): Promise<OutboxRow[]> {
  const before = await walflow.selectFrom('walflow.outbox').select('id').execute();
  await work();
  const { rows } = await sql<OutboxRow & { tenant_id: string }>`
    SELECT event_type, aggregate_id, payload, metadata, tenant_id FROM walflow.outbox
     WHERE NOT (id = ANY(${before.map((row) => row.id)}::uuid[])) ORDER BY created_at, event_type`.execute(walflow);
  expect(rows.filter((row) => row.tenant_id !== TENANT)).toEqual([]);
  return rows.map(({ tenant_id: _tenant, ...row }) => row);
}
