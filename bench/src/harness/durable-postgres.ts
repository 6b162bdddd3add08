import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startPostgres } from '@walflow/testing/runtime';
import { queryValue, withClient } from './pg-client.js';

/**
 * The server settings every figure runs under. Durability is what production has (the test clusters turn
 * fsync and full-page writes off for speed); track_commit_timestamp lets the bench read the commit time of any
 * row's transaction, which is how latencies are measured without instrumenting walflow.
 */
const BENCH_SERVER_SETTINGS: ReadonlyArray<readonly [name: string, value: string]> = [
  ['fsync', 'on'],
  ['synchronous_commit', 'on'],
  ['full_page_writes', 'on'],
  ['shared_buffers', '1GB'],
  ['max_wal_size', '8GB'],
  ['checkpoint_timeout', '30min'],
  ['track_commit_timestamp', 'on'],
];

/**
 * Loaded only for `--profile`: pg_stat_statements costs every statement a little, and walflow makes far more
 * statements than pg_recvlogical or the peers, so it would weigh on walflow's side of each comparison.
 */
const PROFILING_SETTINGS: ReadonlyArray<readonly [name: string, value: string]> = [['shared_preload_libraries', 'pg_stat_statements']];

export interface BenchPostgres {
  /** Superuser URL of the `postgres` database. */
  url: string;
  /** The settings as the running server reports them. */
  settings: Record<string, string>;
  version: string;
  stop(): Promise<void>;
}

/**
 * A dedicated cluster from @walflow/testing, restarted with BENCH_SERVER_SETTINGS (and PROFILING_SETTINGS with `profiling`). startPostgres takes no
 * server settings and passes its own on the postgres command line (where they beat postgresql.conf and
 * ALTER SYSTEM), so they are replaced in postmaster.opts, the command line `pg_ctl restart` reuses.
 */
export async function startBenchPostgres(log: (line: string) => void, profiling: boolean): Promise<BenchPostgres> {
  const wanted = profiling ? [...BENCH_SERVER_SETTINGS, ...PROFILING_SETTINGS] : BENCH_SERVER_SETTINGS;
  const started = await startPostgres({ dedicated: true, log });
  try {
    if (started.restart === undefined) throw new Error(`the bench needs a cluster from local binaries, got one from ${started.source}`);
    if (!started.wal2json) throw new Error('wal2json is not available: apt-get install postgresql-15-wal2json');
    const dataDirectory = await queryValue<string>(started.url, 'SHOW data_directory');
    const optionsFile = join(dataDirectory, 'postmaster.opts');
    await writeFile(optionsFile, withSettings(await readFile(optionsFile, 'utf8'), wanted));
    await started.restart();
    const settings = await readSettings(started.url, wanted.map(([name]) => name));
    for (const [name, value] of wanted) {
      if (settings[name] !== value) {
        throw new Error(`the bench cluster runs with ${name}=${settings[name]}, not ${value}`);
      }
    }
    return { url: started.url, settings, version: await queryValue<string>(started.url, 'SHOW server_version'), stop: () => started.stop() };
  } catch (error) {
    await started.stop();
    throw error;
  }
}

/** postmaster.opts is one line: the program, then each argument in double quotes (`"-c" "fsync=off"`). */
function withSettings(options: string, settings: ReadonlyArray<readonly [string, string]>): string {
  let line = options.trim();
  for (const [name, value] of settings) {
    const argument = `"-c" "${name}=${value}"`;
    const existing = new RegExp(`"-c" "${name}=[^"]*"`);
    line = existing.test(line) ? line.replace(existing, argument) : `${line} ${argument}`;
  }
  return `${line}\n`;
}

async function readSettings(url: string, names: string[]): Promise<Record<string, string>> {
  const { rows } = await withClient(url, (client) =>
    client.query<{ name: string; setting: string }>('SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name', [names]),
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
}
