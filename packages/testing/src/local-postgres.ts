import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { trackCluster } from './cluster-reaper.js';
import { findFreePort } from './free-port.js';
import type { PostgresInstall } from './postgres-bindir.js';
import { runningAsRoot, runPostgresTool } from './run-as-postgres.js';
import { pgCtlServerOptions, serverArgs } from './server-options.js';
import { pathExists } from './path-exists.js';

const execFileAsync = promisify(execFile);

/** How often a start is retried when another process grabbed the chosen port first. */
const portAttempts = 5;
/** How long a fast shutdown may take before the cluster is stopped with `-m immediate`. */
const fastStopSeconds = 15;

/** A server run with pg_ctl from the local PostgreSQL programs, in a temp directory removed when it stops. */
interface RunningServer {
  url: string;
  port: number;
  dir: string;
  wal2json: boolean;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A throwaway cluster. */
export interface LocalCluster extends RunningServer {
  /** A streaming standby of this cluster, made by pg_basebackup, in a temp directory of its own. */
  startStandby(): Promise<LocalStandby>;
}

/** A standby the caller owns and must stop(). */
export interface LocalStandby extends RunningServer {
  /** `pg_ctl promote`, returning once the server accepts writes. */
  promote(): Promise<void>;
}

const describeConfigCache = new Map<string, Promise<boolean>>();

/** Some builds gate logical decoding plugins behind `output_plugin_libraries`; others refuse to start if it is set. */
function hasOutputPluginLibraries(bindir: string): Promise<boolean> {
  let cached = describeConfigCache.get(bindir);
  if (cached === undefined) {
    cached = execFileAsync(join(bindir, 'postgres'), ['--describe-config'], { encoding: 'utf8', maxBuffer: 16 << 20 })
      .then(({ stdout }) => /^output_plugin_libraries\t/m.test(stdout))
      .catch(() => false);
    describeConfigCache.set(bindir, cached);
  }
  return cached;
}


async function readLog(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

function isPortClash(log: string): boolean {
  return /could not bind IPv4 address|Address already in use|could not create any TCP\/IP sockets/i.test(log);
}

/** initdb + pg_ctl start on a free port; the caller owns the returned cluster and must stop() it. */
export async function startLocalPostgres(install: PostgresInstall): Promise<LocalCluster> {
  const cluster = await startInNewDirectory(install, (dataDir) =>
    runPostgresTool(join(install.bindir, 'initdb'), ['-A', 'trust', '--no-sync', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '-D', dataDir]),
  );
  return { ...cluster, startStandby: () => startLocalStandby(install, cluster) };
}

/**
 * A copy of `primary` by pg_basebackup that streams from it (`-R`), started on a free port of its own. initdb's
 * pg_hba lets anyone in over 127.0.0.1 for replication too.
 */
async function startLocalStandby(install: PostgresInstall, primary: RunningServer): Promise<LocalStandby> {
  const standby = await startInNewDirectory(install, (dataDir) =>
    runPostgresTool(join(install.bindir, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', dataDir, '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync']),
  );
  return {
    ...standby,
    async promote() {
      await runPostgresTool(join(install.bindir, 'pg_ctl'), ['promote', '-w', '-t', '60', '-D', join(standby.dir, 'data')]);
    },
  };
}

/** Makes a data directory with `create` in a new temp directory and starts a server on it, on a free port. */
async function startInNewDirectory(install: PostgresInstall, create: (dataDir: string) => Promise<unknown>): Promise<RunningServer> {
  const pgCtl = join(install.bindir, 'pg_ctl');
  const dir = await mkdtemp(join(tmpdir(), 'walflow-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'log');
  let untrack: (() => void) | undefined;
  try {
    // mkdtemp makes a 0700 directory owned by us; the server runs as postgres and needs it.
    if (runningAsRoot) await execFileAsync('chown', ['postgres:', dir]);
    const [guc, wal2json] = await Promise.all([hasOutputPluginLibraries(install.bindir), pathExists(join(install.pkglibdir, 'wal2json.so')), create(dataDir)]);
    untrack = trackCluster({ pgCtl, dataDir, dir });
    for (let attempt = 1; ; attempt++) {
      const port = await findFreePort();
      const options = pgCtlServerOptions(serverArgs({ port, socketDir: dir, hasOutputPluginLibraries: guc, wal2json }));
      const logBefore = (await readLog(logFile)).length;
      try {
        await runPostgresTool(pgCtl, ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', options]);
      } catch (error) {
        const log = (await readLog(logFile)).slice(logBefore);
        if (attempt < portAttempts && isPortClash(log)) continue;
        throw new Error(`${(error as Error).message}\nServer log (${logFile}):\n${log.trim()}`, { cause: error });
      }
      return makeCluster({ pgCtl, dataDir, dir, logFile, port, wal2json, untrack });
    }
  } catch (error) {
    await runPostgresTool(pgCtl, ['stop', '-m', 'immediate', '-D', dataDir], 15_000).catch(() => {});
    untrack?.();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

interface ClusterParts {
  pgCtl: string;
  dataDir: string;
  dir: string;
  logFile: string;
  port: number;
  wal2json: boolean;
  untrack: () => void;
}

function makeCluster(parts: ClusterParts): RunningServer {
  const { pgCtl, dataDir, dir, logFile, port, wal2json, untrack } = parts;
  let stopping: Promise<void> | undefined;

  const stopServer = async (): Promise<void> => {
    try {
      await runPostgresTool(pgCtl, ['stop', '-m', 'fast', '-w', '-t', String(fastStopSeconds), '-D', dataDir]);
      return;
    } catch {
      // Fast shutdown waits for clients and walsenders to go; immediate does not.
    }
    try {
      await runPostgresTool(pgCtl, ['stop', '-m', 'immediate', '-w', '-t', '15', '-D', dataDir]);
      return;
    } catch (error) {
      // pg_ctl status exits non-zero when no server runs (it may have been killed by the test): nothing to stop.
      const running = await runPostgresTool(pgCtl, ['status', '-D', dataDir]).then(
        () => true,
        () => false,
      );
      if (running) throw error;
    }
  };

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    wal2json,
    async restart() {
      if (stopping !== undefined) throw new Error('restart() called on a stopped cluster');
      // Without -o, pg_ctl restart reuses the options recorded in postmaster.opts (same port and settings).
      await runPostgresTool(pgCtl, ['restart', '-m', 'fast', '-w', '-t', '60', '-D', dataDir, '-l', logFile]);
    },
    stop() {
      stopping ??= (async () => {
        await stopServer();
        untrack();
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
