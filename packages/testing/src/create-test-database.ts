import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'pg';
import { quoteIdentifier, randomDatabaseName } from './database-name.js';
import { withDatabase } from './database-url.js';
import { withClient } from './pg-client.js';

/** How long drop() keeps trying to get rid of slots whose walsenders are still shutting down. */
const slotDropTimeoutMs = 15_000;

export interface CreatedTestDatabase {
  /** URL of the new database (the admin URL with its database replaced). */
  url: string;
  /** `<prefix>_<random>`, only [a-z0-9_]. */
  name: string;
  /** Drops the database's replication slots (ending their walsenders) and then the database. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** The database's locale (`en_US.UTF-8`), instead of the cluster's; the server must know it. */
  locale?: string;
  /** The database's encoding (`LATIN1`), instead of UTF8; with the C locale unless `locale` says otherwise. */
  encoding?: string;
}

/** Creates an empty, uniquely named database on the server behind `adminUrl` (a superuser connection). */
export async function createTestDatabase(adminUrl: string, prefix?: string, options: TestDatabaseOptions = {}): Promise<CreatedTestDatabase> {
  const name = randomDatabaseName(prefix);
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}${localeClause(options)}`));
  let dropping: Promise<void> | undefined;
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop() {
      dropping ??= withClient(adminUrl, async (client) => {
        await dropSlots(client, name);
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
      });
      return dropping;
    },
  };
}

function localeClause({ locale, encoding }: TestDatabaseOptions): string {
  if (locale === undefined && encoding === undefined) return '';
  for (const name of [locale, encoding]) {
    if (name !== undefined && !/^[A-Za-z0-9_.@-]+$/.test(name)) throw new Error(`Not a locale or encoding name: ${JSON.stringify(name)}`);
  }
  // template1 may hold objects in the cluster's locale and encoding; template0 never does.
  return ` TEMPLATE template0 LOCALE '${locale ?? 'C'}'${encoding === undefined ? '' : ` ENCODING '${encoding}'`}`;
}

/** DROP DATABASE refuses while the database has slots, and a slot can only be dropped once its walsender is gone. */
async function dropSlots(client: Client, database: string): Promise<void> {
  const deadline = Date.now() + slotDropTimeoutMs;
  for (;;) {
    await client.query(
      'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL',
      [database],
    );
    // A slot may turn active or vanish (temporary slots) between the check and the drop; the loop retries.
    await client
      .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active', [
        database,
      ])
      .catch(() => {});
    const { rows } = await client.query<{ slot_name: string }>(
      'SELECT slot_name FROM pg_replication_slots WHERE database = $1',
      [database],
    );
    if (rows.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`Could not drop replication slots of ${database}: ${rows.map((row) => row.slot_name).join(', ')}`);
    }
    await sleep(50);
  }
}
