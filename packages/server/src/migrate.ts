import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { assertLogicalWal, assertSlotPlugin, createSlot, ensureOutboxPublication, inspectSlot, missingSlotError, type DecoderChoice, type SlotPlugin } from '@walflow/cdc';
import { backoffDelay, SqlState, sqlStateOf, WalflowError, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { assertUnicodeDatabase } from './database-encoding.js';

/**
 * db/migrations at the repository root, from src/ and dist/ alike, and from the CLI's bundle
 * (packages/cli/dist/bundle.cjs), which lies as deep and in which import.meta.url is the bundle's.
 */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../db/migrations/', import.meta.url));

/** Serialises concurrent `walflow migrate` runs, cluster-wide (an arbitrary constant: "walflow" in ASCII). */
const MIGRATION_LOCK_KEY = 0x77616c666c6f77n;

export interface MigrateOptions {
  db: Kysely<WalflowDatabase>;
  slotName: string;
  logger: Logger;
  /** The plugin of a new slot; an existing slot must match unless `auto`. @default 'auto' */
  decoder?: DecoderChoice | undefined;
  /** @default the repository's db/migrations */
  migrationsDir?: string;
  /**
   * The longest a migration waits for any one lock (a table's, a row's) before the run rolls back and tries again;
   * 0 waits as long as it takes. @default DEFAULT_LOCK_TIMEOUT_MS
   */
  lockTimeoutMs?: number;
  /** How long the run keeps trying again after lock timeouts before it fails. @default DEFAULT_LOCK_RETRY_FOR_MS */
  lockRetryForMs?: number;
}

/**
 * A lock a migration waits for queues every later statement on that table behind it: the application's emit()
 * waits as long as the migration does, for whatever transaction holds the table (a long one, one idle in
 * transaction). So a migration waits this long at most, then the run rolls back, lets them through, and tries
 * again.
 */
export const DEFAULT_LOCK_TIMEOUT_MS = 2000;
/** Long enough to outlast any transaction an application means to run; a run that still waits then says for whom. */
export const DEFAULT_LOCK_RETRY_FOR_MS = 10 * 60_000;

/** A migration that waited too long for a lock, or that PostgreSQL chose to end a deadlock with: worth a new run. */
const LOCK_CONFLICTS: readonly string[] = [SqlState.lockNotAvailable, SqlState.deadlockDetected];

export interface MigrateResult {
  applied: string[];
  slotCreated: boolean;
  /** The output plugin the slot is read with. */
  plugin: SlotPlugin;
}

interface MigrationFile {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/**
 * Brings the schema up to date. The replication slot is created before the outbox table, so no event can be
 * committed before the slot exists; an existing outbox without its slot is reported, never papered over.
 * Pending migrations apply in one transaction: all or none, and a fresh outbox is never visible before it is
 * in the pgoutput publication. Idempotent: a second run changes nothing. Concurrent runs wait for each other
 * on an advisory lock.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const { slotName, logger } = options;
  const files = await readMigrations(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  return options.db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn);
    try {
      await assertLogicalWal(conn);
      await assertUnicodeDatabase(conn);
      await sql`CREATE SCHEMA IF NOT EXISTS walflow`.execute(conn);
      await sql`CREATE TABLE IF NOT EXISTS walflow.schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`.execute(conn);

      const slot = await ensureSlot(conn, slotName, options);
      const done = new Map(
        (await conn.selectFrom('walflow.schema_migrations').select(['version', 'checksum']).execute()).map((row) => [row.version, row.checksum]),
      );
      const pending: MigrationFile[] = [];
      for (const file of files) {
        const checksum = done.get(file.version);
        if (checksum === undefined) pending.push(file);
        else if (checksum !== file.checksum) {
          throw new WalflowError('migration_failed', `migration ${file.name} was edited after it was applied; migrations are forward-only: add a new file instead`);
        }
      }
      await applyMigrations(conn, pending, options);
      const applied = pending.map((file) => file.name);
      for (const name of applied) logger.info({ migration: name }, 'migration applied');
      await conn
        .insertInto('walflow.consumer_state')
        .values({ slot_name: slotName, plugin: slot.plugin, slot_created_lsn: slot.createdAt, ...(slot.createdTime === null ? {} : { slot_created_at: slot.createdTime }) })
        .onConflict((conflict) => conflict.column('slot_name').doNothing())
        .execute();
      return { applied, slotCreated: slot.createdAt !== null, plugin: slot.plugin };
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn);
    }
  });
}

/**
 * Creates the slot unless it exists; `createdAt` is the LSN it was created at and `createdTime` when, both null when
 * it already existed (the time, though, when no outbox exists yet). The time is taken here, not when consumer_state
 * is written after the migrations: outbox rows an application wrote in between would be reported at the next start
 * as older than the slot, which they are not.
 */
async function ensureSlot(
  conn: Kysely<WalflowDatabase>,
  slotName: string,
  options: MigrateOptions,
): Promise<{ createdAt: string | null; createdTime: Date | null; plugin: SlotPlugin }> {
  const { logger, decoder = 'auto' } = options;
  const slot = await inspectSlot(conn, slotName);
  const { rows } = await sql<{ exists: boolean; now: Date }>`SELECT to_regclass('walflow.outbox') IS NOT NULL AS exists, clock_timestamp() AS now`.execute(conn);
  const outboxExists = rows[0]!.exists;
  // Made by a first run whose migrations then failed: the outbox comes after this moment, which serves as its time.
  if (slot) return { createdAt: null, createdTime: outboxExists ? null : rows[0]!.now, plugin: assertSlotPlugin(slot, decoder) };
  if (outboxExists) throw missingSlotError(slotName);
  await ensureOutboxPublication(conn);
  const { lsn, plugin } = await createSlotAfterWriters(conn, slotName, decoder, options);
  const { rows: [created] } = await sql<{ at: Date }>`SELECT clock_timestamp() AS at`.execute(conn);
  logger.info({ slot: slotName, lsn, plugin }, 'replication slot created');
  return { createdAt: lsn, createdTime: created!.at, plugin };
}

/**
 * A logical slot is made once every transaction of the server that writes has ended, in any database: one left
 * open (idle in transaction, say) kept the first `walflow migrate` waiting without a word. The wait is bounded by
 * the lock timeout, tried again for the retry time, and says which sessions it waits for.
 */
async function createSlotAfterWriters(
  conn: Kysely<WalflowDatabase>,
  slotName: string,
  decoder: DecoderChoice,
  options: MigrateOptions,
): Promise<{ lsn: string; plugin: SlotPlugin }> {
  const { logger, lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS, lockRetryForMs = DEFAULT_LOCK_RETRY_FOR_MS } = options;
  const giveUpAt = Date.now() + lockRetryForMs;
  for (let attempt = 0; ; attempt++) {
    await sql`SELECT set_config('lock_timeout', ${String(lockTimeoutMs)}, false)`.execute(conn);
    try {
      return await createSlot(conn, slotName, decoder);
    } catch (error) {
      if (sqlStateOf(error instanceof WalflowError ? error.cause : error) !== SqlState.lockNotAvailable) throw error;
      const writers = await openWriters(conn);
      if (Date.now() >= giveUpAt) {
        throw new WalflowError('migration_failed', `replication slot ${slotName} could not be created: it waits for these transactions of the server to end: ${writers}`, { cause: error });
      }
      const delayMs = backoffDelay(attempt, { initialMs: 500, maxMs: 10_000 });
      logger.warn({ slot: slotName, writers, delayMs }, 'the replication slot waits for open transactions of the server to end; trying again');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    } finally {
      await sql`RESET lock_timeout`.execute(conn);
    }
  }
}

/** The oldest transactions of the server that have written, which a new slot waits for. */
async function openWriters(conn: Kysely<WalflowDatabase>): Promise<string> {
  const { rows } = await sql<{ writer: string }>`
    SELECT format('pid %s (%s, database %s, %s, its transaction %s s old)', pid, coalesce(nullif(application_name, ''), 'no application_name'),
                  datname, state, round(extract(epoch FROM now() - xact_start))) AS writer
      FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 5`.execute(conn);
  return rows.length === 0 ? 'none left' : rows.map((row) => row.writer).join('; ');
}

/**
 * Applies the files in one transaction, all or none. A lock not granted within the lock timeout (each wait for a
 * lock, of a table or a row) rolls it back, as does a deadlock; it is tried again, after a growing pause, until
 * the retry time is over.
 */
async function applyMigrations(conn: Kysely<WalflowDatabase>, files: MigrationFile[], options: MigrateOptions): Promise<void> {
  if (files.length === 0) return;
  const { logger, lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS, lockRetryForMs = DEFAULT_LOCK_RETRY_FOR_MS } = options;
  const giveUpAt = Date.now() + lockRetryForMs;
  for (let attempt = 0; ; attempt++) {
    let current: MigrationFile | undefined;
    try {
      await conn.transaction().execute(async (trx) => {
        await sql`SELECT set_config('lock_timeout', ${String(lockTimeoutMs)}, true)`.execute(trx);
        for (const file of files) {
          current = file;
          // No parameters: node-postgres sends the file as one simple query, several statements allowed.
          await sql.raw(file.sql).execute(trx);
          await trx.insertInto('walflow.schema_migrations').values({ version: file.version, name: file.name, checksum: file.checksum }).execute();
        }
      });
      return;
    } catch (error) {
      const failed = `migration ${current?.name ?? '?'} failed; no migration of this run was applied`;
      if (!LOCK_CONFLICTS.includes(sqlStateOf(error) ?? '')) throw WalflowError.from(error, 'migration_failed', failed);
      const holders = await lockHolders(conn);
      const reason = error instanceof Error ? error.message : String(error);
      if (Date.now() >= giveUpAt) {
        const tries = attempt === 0 ? 'once' : `${attempt + 1} times`;
        throw new WalflowError('migration_failed', `${failed}: ${reason} (${tries}, with a lock timeout of ${lockTimeoutMs} ms); other sessions hold walflow's tables: ${holders}`, {
          cause: error,
        });
      }
      const delayMs = backoffDelay(attempt, { initialMs: 500, maxMs: 10_000 });
      logger.warn({ migration: current?.name, reason, lockTimeoutMs, holders, delayMs }, 'a migration could not take a lock: rolled back to let writes through; trying again');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** How many sessions lockHolders names; the oldest transactions first, which are those to look at. */
const HOLDERS_NAMED = 5;

/** The other sessions of this database holding locks on walflow's tables, as an operator would look for them. */
async function lockHolders(conn: Kysely<WalflowDatabase>): Promise<string> {
  try {
    const { rows } = await sql<{ holder: string; sessions: number }>`
      SELECT format('pid %s (%s, %s, its transaction %s s old)', a.pid, coalesce(nullif(a.application_name, ''), 'no application_name'), a.state,
                    round(extract(epoch FROM now() - a.xact_start))) AS holder,
             count(*) OVER ()::int AS sessions
        FROM pg_stat_activity a
       WHERE a.pid <> pg_backend_pid()
         AND a.pid IN (SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                        WHERE l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                          AND c.relnamespace = 'walflow'::regnamespace)
       ORDER BY a.xact_start
       LIMIT ${HOLDERS_NAMED}`.execute(conn);
    if (rows.length === 0) return 'none now (they have ended since)';
    const more = rows[0]!.sessions - rows.length;
    return rows.map((row) => row.holder).join('; ') + (more > 0 ? `; and ${more} more` : '');
  } catch (error) {
    return `unknown (${error instanceof Error ? error.message : String(error)})`;
  }
}

/**
 * Refuses to run against a schema of another version than this walflow's: code and migrations go together (0031
 * changed how a parked row is written, and an older process could park none). Pending migrations need `walflow
 * migrate` of this version; migrations it does not know mean a newer walflow migrated the database.
 */
export async function assertSchemaCurrent(db: Kysely<WalflowDatabase>, migrationsDir = DEFAULT_MIGRATIONS_DIR): Promise<void> {
  const { rows } = await sql<{ exists: boolean }>`SELECT to_regclass('walflow.schema_migrations') IS NOT NULL AS exists`.execute(db);
  if (!rows[0]?.exists) throw new WalflowError('migration_failed', 'this database has no walflow schema: run `walflow migrate` first');
  // By version and checksum, as migrate compares them.
  const files = new Map((await readMigrations(migrationsDir)).map((file) => [file.version, file]));
  const applied = await db.selectFrom('walflow.schema_migrations').select(['version', 'name', 'checksum']).orderBy('version').execute();
  const unknown = applied.filter((row) => files.get(row.version)?.checksum !== row.checksum).map((row) => row.name);
  if (unknown.length > 0) {
    throw new WalflowError('migration_failed', `the schema holds migrations this walflow does not know (${unknown.join(', ')}): a newer walflow migrated it; run that version`);
  }
  const done = new Set(applied.map((row) => row.version));
  const pending = [...files.values()].filter((file) => !done.has(file.version)).map((file) => file.name);
  if (pending.length > 0) throw new WalflowError('migration_failed', `the schema lacks migrations ${pending.join(', ')}: run \`walflow migrate\` of this version first`);
}

async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name)).sort();
  return Promise.all(
    names.map(async (name) => {
      const text = await readFile(`${dir}/${name}`, 'utf8');
      return { version: Number(name.slice(0, 4)), name, sql: text, checksum: createHash('sha256').update(text).digest('hex') };
    }),
  );
}
