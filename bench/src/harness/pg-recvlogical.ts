import { execFile, spawn } from 'node:child_process';
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

/** Seconds from spawning pg_recvlogical to the moment it saw the end position, and to its exit. */
export interface RecvlogicalTiming {
  /** What figure 2 sets beside walflow's last commit: the stream read to its end, without the process's exit. */
  endReachedSeconds: number;
  exitSeconds: number;
}

/**
 * Streams `slot` from its start to `endLsn` with pg_recvlogical, output to /dev/null: the physical limit of
 * decoding this backlog with wal2json on this machine. `-v` makes it say when it reaches the end position.
 */
export async function streamWithRecvlogical(url: string, slot: string, endLsn: string): Promise<RecvlogicalTiming> {
  const program = join(await postgresBindir(), 'pg_recvlogical');
  const options = Object.entries(WAL2JSON_OPTIONS).flatMap(([name, value]) => ['-o', `${name}=${value}`]);
  const started = performance.now();
  // In C, whatever the machine's locale: the message looked for is the untranslated one.
  const child = spawn(program, ['-v', '-d', url, '--slot', slot, '--start', '--no-loop', '--endpos', endLsn, '-f', '/dev/null', ...options], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  let stderr = '';
  let endReachedAt: number | undefined;
  let exitedAt = Number.NaN;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (endReachedAt === undefined && stderr.includes('end position')) endReachedAt = performance.now();
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 30 * 60_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => (exitedAt = performance.now()));
    // Once stderr is read to its end too: its last lines may come after 'exit'.
    child.once('close', (exitCode) => resolve(exitCode));
  }).finally(() => clearTimeout(timeout));
  if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}: ${stderr.slice(-2000)}`);
  if (endReachedAt === undefined) throw new Error(`pg_recvlogical never said it reached ${endLsn}: ${stderr.slice(-2000)}`);
  return { endReachedSeconds: (endReachedAt - started) / 1000, exitSeconds: (exitedAt - started) / 1000 };
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
