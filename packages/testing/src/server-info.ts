import { randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { withClient } from './pg-client.js';

/** What the helpers need to know about a running server. */
export interface ServerInfo {
  /** Server major version, e.g. 15. */
  version: number;
  walLevel: string;
}

export async function readServerInfo(url: string): Promise<ServerInfo> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ version: number; wal_level: string }>(
      "SELECT current_setting('server_version_num')::int / 10000 AS version, current_setting('wal_level') AS wal_level",
    );
    const row = rows[0];
    if (row === undefined) throw new Error('SELECT current_setting(...) returned no row');
    return { version: row.version, walLevel: row.wal_level };
  });
}

/** wal2json is a plugin, not an extension: the only reliable check is creating a (temporary) slot with it. */
export async function canUseWal2json(url: string): Promise<boolean> {
  return withClient(url, async (client) => {
    const slot = `walflow_probe_${randomBytes(6).toString('hex')}`;
    try {
      await client.query("SELECT pg_create_logical_replication_slot($1, 'wal2json', true)", [slot]);
    } catch {
      return false;
    }
    await dropSlotQuietly(client, slot);
    return true;
  });
}

async function dropSlotQuietly(client: Client, slot: string): Promise<void> {
  // A temporary slot also disappears when the session ends, so a failed drop leaks nothing.
  await client.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
}
