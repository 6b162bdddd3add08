import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { assertLogicalWal, assertSlotPlugin, createSlot, ensureOutboxPublication, inspectSlot, missingSlotError, type DecoderChoice, type SlotPlugin } from '@walflow/cdc';
import { WalflowError, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';

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
}

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
      await sql`CREATE SCHEMA IF NOT EXISTS walflow`.execute(conn);
      await sql`CREATE TABLE IF NOT EXISTS walflow.schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`.execute(conn);

      const slot = await ensureSlot(conn, slotName, options.decoder ?? 'auto', logger);
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
      await applyMigrations(conn, pending);
      const applied = pending.map((file) => file.name);
      for (const name of applied) logger.info({ migration: name }, 'migration applied');
      await conn
        .insertInto('walflow.consumer_state')
        .values({ slot_name: slotName, plugin: slot.plugin, slot_created_lsn: slot.createdAt })
        .onConflict((conflict) => conflict.column('slot_name').doNothing())
        .execute();
      return { applied, slotCreated: slot.createdAt !== null, plugin: slot.plugin };
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn);
    }
  });
}

/** Creates the slot unless it exists; `createdAt` is the LSN it was created at, null when it already existed. */
async function ensureSlot(
  conn: Kysely<WalflowDatabase>,
  slotName: string,
  decoder: DecoderChoice,
  logger: Logger,
): Promise<{ createdAt: string | null; plugin: SlotPlugin }> {
  const slot = await inspectSlot(conn, slotName);
  if (slot) return { createdAt: null, plugin: assertSlotPlugin(slot, decoder) };
  const { rows } = await sql<{ exists: boolean }>`SELECT to_regclass('walflow.outbox') IS NOT NULL AS exists`.execute(conn);
  if (rows[0]?.exists) throw missingSlotError(slotName);
  await ensureOutboxPublication(conn);
  const { lsn, plugin } = await createSlot(conn, slotName, decoder);
  logger.info({ slot: slotName, lsn, plugin }, 'replication slot created');
  return { createdAt: lsn, plugin };
}

async function applyMigrations(conn: Kysely<WalflowDatabase>, files: MigrationFile[]): Promise<void> {
  if (files.length === 0) return;
  let current: MigrationFile | undefined;
  try {
    await conn.transaction().execute(async (trx) => {
      for (const file of files) {
        current = file;
        // No parameters: node-postgres sends the file as one simple query, several statements allowed.
        await sql.raw(file.sql).execute(trx);
        await trx.insertInto('walflow.schema_migrations').values({ version: file.version, name: file.name, checksum: file.checksum }).execute();
      }
    });
  } catch (error) {
    throw WalflowError.from(error, 'migration_failed', `migration ${current?.name ?? '?'} failed; no migration of this run was applied`);
  }
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
