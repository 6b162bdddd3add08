import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicationConsumer, type ReplicationConsumerOptions } from '@walflow/cdc';
import { parseLsn, type BatchDispatcher, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { applyWorkflow, Dispatcher, type WorkflowDefinitionInput, type WorkflowPolicy } from '@walflow/executor';
import { createDatabase, DEFAULT_MIGRATIONS_DIR, loadConfig, migrate, startWalflow, type RunningWalflow, type WalflowConfig } from '@walflow/server';
import { waitFor, type TestDatabase } from '@walflow/testing';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import pino, { type Logger } from 'pino';

export const silentLogger = pino({ level: process.env.WALFLOW_TEST_LOG_LEVEL ?? 'silent' });

export function testConfig(url: string, slotName: string, overrides: Partial<WalflowConfig> = {}): WalflowConfig {
  const environment = {
    DATABASE_URL: url,
    WALFLOW_SLOT: slotName,
    WALFLOW_HTTP_PORT: '0',
    WALFLOW_HTTP_HOST: '127.0.0.1',
    WALFLOW_LOG_LEVEL: 'silent',
    WALFLOW_WORKER_CONCURRENCY: '2',
    WALFLOW_WORKER_POLL_MS: '100',
  };
  return { ...loadConfig(environment), ...overrides };
}

/** Migrates the test database and starts walflow in this process, logging to `logger`. */
export async function startTestWalflow(
  url: string,
  slotName: string,
  overrides: Partial<WalflowConfig> = {},
  logger: Logger = silentLogger,
): Promise<RunningWalflow> {
  const db = createDatabase(url, silentLogger);
  try {
    await migrate({ db, slotName, logger: silentLogger, decoder: overrides.decoder });
  } finally {
    await db.destroy();
  }
  return startWalflow(testConfig(url, slotName, overrides), logger);
}

/** The test database migrated, walflow's slot created; destroy the returned Kysely when done. */
export async function openMigrated(database: TestDatabase): Promise<Kysely<WalflowDatabase>> {
  const db = createDatabase(database.url, silentLogger);
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  return db;
}

/** A consumer of the test database's slot that reconnects within 100 ms; `options` override any of it. */
export function testConsumer(
  database: TestDatabase,
  db: Kysely<WalflowDatabase>,
  dispatcher: BatchDispatcher,
  options: Partial<ReplicationConsumerOptions> = {},
): ReplicationConsumer {
  return new ReplicationConsumer({
    connection: { connectionString: database.url },
    slotName: database.slotName,
    dispatcher,
    db,
    logger: silentLogger,
    reconnect: { initialMs: 20, maxMs: 100 },
    ...options,
  });
}

/** A logger that keeps the message of every warning and error, to see that no session failed. */
export function keptWarnings(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
  return { logger, warnings };
}

/** The test database migrated, with these workflows applied and a Dispatcher on it; destroy `db` when done. */
export async function openDispatcher(
  database: TestDatabase,
  workflows: readonly WorkflowDefinitionInput[],
): Promise<{ db: Kysely<WalflowDatabase>; dispatcher: Dispatcher }> {
  const db = await openMigrated(database);
  for (const workflow of workflows) await applyTestWorkflow(db, workflow);
  return { db, dispatcher: new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }) };
}

export async function applyTestWorkflow(db: Kysely<WalflowDatabase>, workflow: WorkflowDefinitionInput, policy?: WorkflowPolicy): Promise<string> {
  return (await applyWorkflow(db, workflow, policy)).workflow.id;
}

/**
 * The transaction id of events handed straight to a Dispatcher. They stand for decoded, committed transactions,
 * and the dispatcher waits until the writers of a batch are visible before it deletes their outbox rows: the id
 * must be one every snapshot sees ended (the first normal one), never a number that may lie in the future.
 */
export const COMMITTED_XID = '3';

/**
 * Event number `n` of a stream handed straight to a Dispatcher: `policy.approved` for aggregate `p<n>`,
 * committed a minute ago plus n ms, at a commit position that grows with n.
 */
export function approvalEvent(tenantId: string, n: number, id: string = randomUUID()): EventEnvelope {
  return {
    id,
    type: 'policy.approved',
    tenantId,
    aggregateType: 'policy',
    aggregateId: `p${n}`,
    payload: { n },
    metadata: {},
    committedAt: new Date(Date.now() - 60_000 + n).toISOString(),
    commitLsn: parseLsn(`0/${(0x2000 + n).toString(16)}`),
    position: 0,
    xid: COMMITTED_XID,
  };
}

let paymentLsn = 0x1000;

/** A committed `payment.received` event as the stream hands it over, each at a later LSN than the one before. */
export function paymentEvent(tenantId: string, payload: Record<string, unknown> = {}): EventEnvelope {
  paymentLsn += 0x100;
  return {
    id: randomUUID(),
    type: 'payment.received',
    tenantId,
    aggregateType: null,
    aggregateId: null,
    payload,
    metadata: {},
    committedAt: new Date().toISOString(),
    commitLsn: parseLsn(`0/${paymentLsn.toString(16)}`),
    position: 0,
    xid: COMMITTED_XID,
  };
}

export interface TenantCounts {
  events: number;
  decisions: number;
  fired: number;
  runs: number;
  succeeded: number;
  outbox: number;
  deadLetters: number;
}

/** What walflow recorded for one tenant: tests use a tenant each so they never see each other's rows. */
export async function countsFor(db: Kysely<WalflowDatabase>, tenant: string): Promise<TenantCounts> {
  const { rows } = await sql<Record<keyof TenantCounts, string>>`
    SELECT (SELECT count(*) FROM walflow.events WHERE tenant_id = ${tenant}) AS events,
           (SELECT count(*) FROM walflow.decisions WHERE tenant_id = ${tenant}) AS decisions,
           (SELECT count(*) FROM walflow.decisions WHERE tenant_id = ${tenant} AND outcome = 'fired') AS fired,
           (SELECT count(*) FROM walflow.workflow_runs WHERE tenant_id = ${tenant}) AS runs,
           (SELECT count(*) FROM walflow.workflow_runs WHERE tenant_id = ${tenant} AND status = 'succeeded') AS succeeded,
           (SELECT count(*) FROM walflow.outbox WHERE tenant_id = ${tenant}) AS outbox,
           (SELECT count(*) FROM walflow.dead_letters WHERE tenant_id = ${tenant}) AS "deadLetters"`.execute(db);
  const row = rows[0]!;
  return Object.fromEntries(Object.entries(row).map(([key, value]) => [key, Number(value)])) as unknown as TenantCounts;
}

/**
 * Keeps the text of every statement that inserts into events or workflow_runs (current_query() in a statement
 * trigger: the top-level statement, a COPY or an INSERT), so a test can tell how the dispatcher loaded them.
 */
export async function noteLoads(db: Kysely<WalflowDatabase>): Promise<void> {
  await sql`CREATE TABLE public.loads (target text NOT NULL, statement text NOT NULL)`.execute(db);
  await sql`CREATE FUNCTION public.note_load() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN INSERT INTO public.loads VALUES (TG_TABLE_NAME, current_query()); RETURN NULL; END $$`.execute(db);
  for (const table of ['events', 'workflow_runs']) {
    await sql`CREATE TRIGGER note_load AFTER INSERT ON ${sql.table(`walflow.${table}`)} FOR EACH STATEMENT EXECUTE FUNCTION public.note_load()`.execute(db);
  }
}

export async function forgetLoads(db: Kysely<WalflowDatabase>): Promise<void> {
  await sql`TRUNCATE public.loads`.execute(db);
}

/** How many COPY statements loaded `table` since noteLoads or forgetLoads. */
export async function countCopies(db: Kysely<WalflowDatabase>, table: 'events' | 'workflow_runs'): Promise<number> {
  const { rows } = await sql<{ copies: number }>`
    SELECT count(*)::int AS copies FROM public.loads WHERE target = ${table} AND statement LIKE 'COPY %'`.execute(db);
  return rows[0]!.copies;
}

/** Runs `statement` in a transaction kept open, with the locks it took, until released; it is then rolled back, or committed with `commit`. */
export async function holdOpen(db: Kysely<WalflowDatabase>, statement: RawBuilder<unknown>, options: { commit?: boolean } = {}): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const open = db
    .transaction()
    .execute(async (trx) => {
      await statement.execute(trx);
      locked();
      await new Promise<void>((resolve) => (release = resolve));
      if (!options.commit) throw new Error('rolled back');
    })
    .catch(() => undefined);
  await isLocked;
  return { release: () => (release(), open) };
}

/** Waits until a session of this database waits for a lock while running a statement like `queryLike`. */
export async function waitForLockWait(db: Kysely<WalflowDatabase>, description: string, queryLike = '%'): Promise<void> {
  await waitFor(description, async () => {
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE ${queryLike}`.execute(db);
    return rows[0]!.n > 0;
  });
}

/**
 * How often the session of `executor` has read walflow.workflow_runs whole in counts not yet reported to the
 * statistics (this transaction's, and possibly earlier ones'): take the difference around what is measured.
 */
export async function runTableScansSoFar(executor: Kysely<WalflowDatabase>): Promise<number> {
  const { rows } = await sql<{ seq_scan: string }>`
    SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'walflow.workflow_runs'::regclass`.execute(executor);
  return Number(rows[0]!.seq_scan);
}

/** walflow's migrations and one more, `name` holding `statement`, as an upgrade may add; `remove` it after. */
export async function migrationsAdding(name: string, statement: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'walflow-migrations-'));
  for (const file of await readdir(DEFAULT_MIGRATIONS_DIR)) await cp(join(DEFAULT_MIGRATIONS_DIR, file), join(dir, file));
  await writeFile(join(dir, name), `${statement}\n`);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
