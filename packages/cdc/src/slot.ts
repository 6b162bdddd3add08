import { assertSlotName, sqlStateOf, SqlState, WalflowError } from '@walflow/core';
import { sql, type QueryExecutorProvider } from 'kysely';
import { isSlotPlugin, type SlotPlugin } from './change-decoder.js';
import { OUTBOX_PUBLICATION, OUTBOX_SCHEMA, OUTBOX_TABLE } from './outbox-stream.js';

/** `auto` keeps an existing slot's plugin and gives a new slot wal2json when the server has it, else pgoutput. */
export type DecoderChoice = SlotPlugin | 'auto';

export interface SlotInfo {
  name: string;
  plugin: string | null;
  database: string | null;
  active: boolean;
  /** `reserved`, `extended`, `unreserved` or `lost` (invalidated by max_slot_wal_keep_size). */
  walStatus: string | null;
  confirmedFlushLsn: string | null;
}

// Slot functions are not tables Kysely knows, so these queries use the untyped sql tag.
/**
 * The slot of this name, or null. Slots belong to the cluster, not to a database: a slot another database
 * created under the same name is refused, saying so. Taken for this database's, it let migrate build an outbox
 * no slot streams, and repair drop the other database's slot.
 */
export async function inspectSlot(db: QueryExecutorProvider, name: string): Promise<SlotInfo | null> {
  const { rows } = await sql<{
    plugin: string | null;
    database: string | null;
    this_database: string;
    active: boolean;
    wal_status: string | null;
    confirmed_flush_lsn: string | null;
  }>`SELECT plugin, database, current_database() AS this_database, active, wal_status, confirmed_flush_lsn::text
       FROM pg_replication_slots WHERE slot_name = ${assertSlotName(name)}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  if (row.database !== row.this_database) {
    throw new WalflowError(
      'config_invalid',
      `replication slot ${name} belongs to database ${row.database ?? '(none: a physical slot)'}, not ${row.this_database}: ` +
        'each database walflow serves needs a slot of its own (WALFLOW_SLOT)',
    );
  }
  return {
    name,
    plugin: row.plugin,
    database: row.database,
    active: row.active,
    walStatus: row.wal_status,
    confirmedFlushLsn: row.confirmed_flush_lsn,
  };
}

export async function assertLogicalWal(db: QueryExecutorProvider): Promise<void> {
  const { rows } = await sql<{ wal_level: string }>`SELECT current_setting('wal_level') AS wal_level`.execute(db);
  if (rows[0]?.wal_level !== 'logical') {
    throw new WalflowError(
      'wal_level_not_logical',
      `PostgreSQL runs with wal_level=${rows[0]?.wal_level ?? 'unknown'}; walflow needs wal_level=logical (set it in postgresql.conf and restart the server)`,
    );
  }
}

/**
 * Creates the logical slot with the chosen plugin (`auto`: wal2json when the server allows it, else pgoutput).
 * This waits for every transaction open in the cluster to finish, and must run outside any transaction. A
 * pgoutput slot needs its publication to exist first; see ensureOutboxPublication.
 */
export async function createSlot(db: QueryExecutorProvider, name: string, choice: DecoderChoice): Promise<{ lsn: string; plugin: SlotPlugin }> {
  if (choice === 'auto') {
    try {
      return await createSlot(db, name, 'wal2json');
    } catch (error) {
      if (!(error instanceof WalflowError && error.code === 'slot_plugin_not_allowed')) throw error;
      return createSlot(db, name, 'pgoutput');
    }
  }
  try {
    const { rows } = await sql<{ lsn: string }>`
      SELECT lsn::text FROM pg_create_logical_replication_slot(${assertSlotName(name)}, ${choice})`.execute(db);
    return { lsn: rows[0]?.lsn ?? '0/0', plugin: choice };
  } catch (error) {
    throw explainSlotError(error, name);
  }
}

/**
 * The slot's plugin must match an explicit choice; `auto` accepts whichever supported plugin it has.
 * Returns the plugin to read the slot with.
 */
export function assertSlotPlugin(slot: SlotInfo, choice: DecoderChoice): SlotPlugin {
  const { plugin, name } = slot;
  if (!isSlotPlugin(plugin) || (choice !== 'auto' && plugin !== choice)) {
    const wanted = choice === 'auto' ? 'wal2json or pgoutput' : choice;
    throw new WalflowError(
      'slot_plugin_not_allowed',
      `replication slot ${name} exists with plugin ${plugin ?? 'none'}, but walflow is configured for ${wanted} (WALFLOW_DECODER); ` +
        'a slot keeps its plugin for life: set WALFLOW_DECODER=auto, or recreate the slot with `walflow repair`',
    );
  }
  return plugin;
}

/**
 * Creates the publication pgoutput reads, unless it exists, with the outbox in it once the outbox exists. pgoutput
 * looks its publication up as of each decoded change, and fails on changes from before the publication existed,
 * so it must predate the slot. On a fresh database it is created empty, and migration 0009 adds the outbox table
 * in the same transaction as the rest of the schema; created again later (a publication dropped, or left out of a
 * restore), it takes the outbox at once, or the slot a repair creates next would decode no outbox row at all.
 */
export async function ensureOutboxPublication(db: QueryExecutorProvider): Promise<void> {
  const { rows } = await sql<{ exists: boolean; outbox: boolean; published: boolean }>`
    SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = ${OUTBOX_PUBLICATION}) AS exists,
           to_regclass(${`${OUTBOX_SCHEMA}.${OUTBOX_TABLE}`}) IS NOT NULL AS outbox,
           EXISTS (SELECT FROM pg_publication_tables WHERE pubname = ${OUTBOX_PUBLICATION}
                      AND schemaname = ${OUTBOX_SCHEMA} AND tablename = ${OUTBOX_TABLE}) AS published`.execute(db);
  const { exists, outbox, published } = rows[0]!;
  if (!exists) await sql`CREATE PUBLICATION ${sql.id(OUTBOX_PUBLICATION)} WITH (publish = 'insert')`.execute(db);
  if (outbox && !published) await sql`ALTER PUBLICATION ${sql.id(OUTBOX_PUBLICATION)} ADD TABLE ${sql.table(`${OUTBOX_SCHEMA}.${OUTBOX_TABLE}`)}`.execute(db);
}

/** Turns PostgreSQL's slot errors into ones that say what to do. */
export function explainSlotError(error: unknown, name: string): WalflowError {
  const message = error instanceof Error ? error.message : String(error);
  if (/may not be used as an output plugin/.test(message)) {
    return new WalflowError(
      'slot_plugin_not_allowed',
      `PostgreSQL does not allow wal2json as an output plugin: add it to output_plugin_libraries (for example output_plugin_libraries = 'pgoutput, test_decoding, wal2json') and reload the configuration, or set WALFLOW_DECODER=pgoutput`,
      { cause: error },
    );
  }
  if (/publication "[^"]*" does not exist/.test(message)) {
    return new WalflowError(
      'slot_plugin_not_allowed',
      `the pgoutput slot ${name} cannot find publication ${OUTBOX_PUBLICATION} as of the changes it decodes: run \`walflow migrate\`, then \`walflow repair\` to recreate the slot`,
      { cause: error },
    );
  }
  if (/could not access file "wal2json"/.test(message)) {
    return new WalflowError(
      'slot_plugin_not_allowed',
      'the wal2json output plugin is not installed on the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql-<major>-wal2json), or set WALFLOW_DECODER=pgoutput',
      { cause: error },
    );
  }
  if (sqlStateOf(error) === SqlState.undefinedObject || /replication slot .* does not exist/.test(message)) {
    return missingSlotError(name, error);
  }
  return WalflowError.from(error, 'replication_failed', `replication slot ${name}`);
}

export function missingSlotError(name: string, cause?: unknown): WalflowError {
  return new WalflowError(
    'slot_missing',
    `replication slot ${name} does not exist: events committed since it was lost were never streamed. ` +
      'walflow does not recreate it silently; run `walflow repair` to recreate it and dispatch the outbox rows it missed',
    cause === undefined ? undefined : { cause },
  );
}
