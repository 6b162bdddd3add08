import { execFile } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withClient } from './pg-client.js';

const execFileAsync = promisify(execFile);

/**
 * The options walflow's consumer passes to wal2json (packages/cdc/src/wal2json-decoder.ts, wal2jsonOptions),
 * spelled as pg_recvlogical takes them. The bench does not depend on @walflow/cdc, so keep the two in step.
 */
const WAL2JSON_OPTIONS = {
  'format-version': '2',
  'include-xids': 'on',
  'include-timestamp': 'on',
  'include-lsn': 'on',
  'include-types': 'off',
  'add-tables': 'walflow.outbox',
  actions: 'insert',
  // walflow names a prefix of its own per stream, which nothing writes: no message passes.
  'add-msg-prefixes': 'walflow-reads-no-message',
};

/** A second wal2json slot, created before the backlog so that it sees the same transactions as walflow's. */
export async function createRecvlogicalSlot(url: string, slot: string): Promise<void> {
  await withClient(url, (client) => client.query(`SELECT pg_create_logical_replication_slot($1, 'wal2json')`, [slot]));
}

/**
 * Streams `slot` from its start to `endLsn` with pg_recvlogical, output to /dev/null: the physical limit of
 * decoding this backlog with wal2json on this machine. Returns the seconds from spawn to exit.
 */
export async function streamWithRecvlogical(url: string, slot: string, endLsn: string): Promise<number> {
  const program = join(await postgresBindir(), 'pg_recvlogical');
  const options = Object.entries(WAL2JSON_OPTIONS).flatMap(([name, value]) => ['-o', `${name}=${value}`]);
  const started = performance.now();
  await execFileAsync(program, ['-d', url, '--slot', slot, '--start', '--no-loop', '--endpos', endLsn, '-f', '/dev/null', ...options], {
    timeout: 30 * 60_000,
  });
  return (performance.now() - started) / 1000;
}

/** PG_BINDIR, else `pg_config --bindir`, else the newest /usr/lib/postgresql/<version>/bin. */
async function postgresBindir(): Promise<string> {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const configured = await execFileAsync('pg_config', ['--bindir']).then(
    ({ stdout }) => stdout.trim(),
    () => '',
  );
  if (configured !== '' && (await exists(join(configured, 'pg_recvlogical')))) return configured;
  const versions = (await readdir('/usr/lib/postgresql').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bindir = `/usr/lib/postgresql/${version}/bin`;
    if (await exists(join(bindir, 'pg_recvlogical'))) return bindir;
  }
  throw new Error('pg_recvlogical not found: set PG_BINDIR to the PostgreSQL bin directory');
}

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
