import { explainConnectFailure, WALFLOW_SEARCH_PATH, type WalflowDatabase } from '@walflow/core';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { connectTimeoutMs, withoutApplicationName } from './connection-config.js';
import { acceptCopyFromStdin } from './copy-from-stdin.js';

/**
 * The application_name of walflow's own sessions, those that record events: following the event log starts
 * before their open transactions. A pool that records none takes another name, or its long transactions (a
 * dry run's) would make following start early.
 */
export const RECORDING_APPLICATION_NAME = 'walflow';

export interface DatabaseOptions {
  max?: number;
  /** @default RECORDING_APPLICATION_NAME */
  applicationName?: string;
  /** Kept up to date with the server process ids of the pool's open connections. */
  backendPids?: Set<number>;
  /** Each statement's limit (the session's statement_timeout); a transaction may set its own. */
  statementTimeoutMs?: number;
  /**
   * How long a session may sit in an open transaction between statements before the server ends it
   * (idle_in_transaction_session_timeout). A process cut off from the database leaves its transactions open on
   * the server, holding their locks, until the server notices (TCP keepalive: two hours by default): the next
   * leader's checkpoint and redelivered events would wait for them that long.
   */
  idleInTransactionTimeoutMs?: number;
}

/**
 * TCP keepalive on every connection, so that a reply that never comes (a server or network that went silent) fails
 * the statement waiting for it in minutes rather than never; the kernel's probe interval and count do the rest.
 */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/**
 * A Kysely over a pg pool. Every client's error must be handled, or it crashes the process. Its connections
 * also run core's `copyRows` statements, and each opens within the URL's connect timeout.
 */
export function createDatabase(url: string, logger: Logger, options: DatabaseOptions = {}): Kysely<WalflowDatabase> {
  const pool = new pg.Pool({
    connectionString: withoutApplicationName(url),
    max: options.max ?? 10,
    application_name: options.applicationName ?? RECORDING_APPLICATION_NAME,
    // Ended by the server, and given up on by the client a little later: a server that stalls answers nothing.
    ...(options.statementTimeoutMs === undefined ? {} : { statement_timeout: options.statementTimeoutMs, query_timeout: options.statementTimeoutMs + 2000 }),
    ...(options.idleInTransactionTimeoutMs === undefined ? {} : { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs }),
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    Client: clientOpeningWithin(connectTimeoutMs(url)),
  });
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
  pool.on('connect', (client) => {
    // A checked-out client whose server goes away between queries emits 'error' too; unheard, it kills the process.
    client.on('error', (error) => logger.warn({ err: error }, 'database connection failed'));
    acceptCopyFromStdin(client);
    options.backendPids?.add(backendPid(client));
    // walflow's statements count on read committed (a statement that waited for a row sees it as committed, where
    // a snapshot taken before the wait fails to serialize), on times written out in UTC (a JetStream message's
    // id holds its event's commit time as text: written in another zone, a re-publication would be stored twice),
    // and on commits that are durable when they return: the slot is acknowledged once a batch commits, and an
    // asynchronous commit lost in a crash would leave its events behind a slot that moved past them for good
    // (synchronous_commit off becomes local; the stronger settings stay). And on built-in functions and operators
    // being PostgreSQL's (WALFLOW_SEARCH_PATH). Whatever the database's or role's defaults; queued before any
    // statement of whoever checks the client out.
    void client
      .query(SESSION_SETTINGS)
      .catch((error: unknown) => logger.warn({ err: error }, 'could not set the session to read committed, UTC, durable commits and a search path of pg_catalog'));
  });
  pool.on('remove', (client) => options.backendPids?.delete(backendPid(client)));
  return new Kysely<WalflowDatabase>({ dialect: new PostgresDialect({ pool }) });
}

const SESSION_SETTINGS = `
  SET default_transaction_isolation = 'read committed';
  SET TimeZone = 'UTC';
  SET search_path = ${WALFLOW_SEARCH_PATH};
  SELECT set_config('synchronous_commit', 'local', false) WHERE current_setting('synchronous_commit') = 'off'`;

/**
 * The pool's clients, each limited to `timeoutMs` to open, and saying so when it runs out. Not the pool's
 * connectionTimeoutMillis: that also limits the wait for a client while all are in use, which under load is no
 * failure.
 */
function clientOpeningWithin(timeoutMs: number): typeof pg.Client {
  const explain = (error: Error): Error => explainConnectFailure(error, timeoutMs);
  return class extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: timeoutMs });
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: (error: Error | null) => void): void;
    override connect(callback?: (error: Error | null) => void): Promise<pg.Client> | void {
      if (callback) return super.connect((error: Error | null) => callback(error && explain(error)));
      return super.connect().catch((error: Error) => {
        throw explain(error);
      });
    }
  };
}

/** The server process of a connected client (pg keeps it from the BackendKeyData message). */
function backendPid(client: pg.PoolClient): number {
  return (client as unknown as { processID: number }).processID;
}
