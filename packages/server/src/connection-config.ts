import type { ClientConfig } from 'pg';

/** How long opening a connection may take when DATABASE_URL does not say. */
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;

/** Node's timers hold at most 2^31 - 1 ms, and fire at once beyond that. */
const MAX_CONNECT_TIMEOUT_SECONDS = 2_147_483;

export const CONNECT_TIMEOUT_PROBLEM = `has a connect_timeout that is not a whole number of seconds up to ${MAX_CONNECT_TIMEOUT_SECONDS} (0 for no limit)`;

/**
 * The limit on opening one connection, from DATABASE_URL's `connect_timeout` (seconds, as libpq reads it: 0 or
 * less waits as long as the network does, and 1 means 2), in milliseconds; 0 for no limit. node-postgres reads
 * the parameter for its native driver only, so without this a connection to a server that stopped answering
 * (a dropped network, a host gone) waits for the kernel to give up, minutes, and a stop waits with it.
 */
export function connectTimeoutMs(databaseUrl: string): number {
  const written = writtenConnectTimeout(databaseUrl);
  if (written === null) return DEFAULT_CONNECT_TIMEOUT_SECONDS * 1000;
  if (!isAccepted(written)) throw new Error(`DATABASE_URL ${CONNECT_TIMEOUT_PROBLEM}: "${written}"`);
  const seconds = Number(written);
  return seconds <= 0 ? 0 : Math.max(seconds, 2) * 1000;
}

/** False when the URL's connect_timeout is written but not as walflow takes it (CONNECT_TIMEOUT_PROBLEM). */
export function hasValidConnectTimeout(databaseUrl: string): boolean {
  const written = writtenConnectTimeout(databaseUrl);
  return written === null || isAccepted(written);
}

/**
 * A connection of walflow's own to DATABASE_URL (replication, leader lock, run listener): every one opens within
 * connectTimeoutMs, and sends TCP keepalives after 30 s idle, so that a network that dropped it without a word
 * is noticed by the kernel in minutes rather than hours.
 */
export function connectionConfig(databaseUrl: string, applicationName?: string): ClientConfig {
  return {
    connectionString: withoutApplicationName(databaseUrl),
    connectionTimeoutMillis: connectTimeoutMs(databaseUrl),
    keepAlive: true,
    keepAliveInitialDelayMillis: 30_000,
    ...(applicationName === undefined ? {} : { application_name: applicationName }),
  };
}

/**
 * DATABASE_URL without an application_name: pg lets the URL's override the one walflow gives its sessions, and
 * following the event log tells walflow's recording sessions by their name (RECORDING_APPLICATION_NAME).
 */
export function withoutApplicationName(databaseUrl: string): string {
  if (!URL.canParse(databaseUrl)) return databaseUrl;
  const url = new URL(databaseUrl);
  if (!url.searchParams.has('application_name')) return databaseUrl;
  url.searchParams.delete('application_name');
  return url.toString();
}

/** A URL only pg can read (it reads more than WHATWG URLs) has none that walflow sees; pg reports what is wrong. */
function writtenConnectTimeout(databaseUrl: string): string | null {
  return URL.canParse(databaseUrl) ? new URL(databaseUrl).searchParams.get('connect_timeout') : null;
}

function isAccepted(written: string): boolean {
  return /^\s*[+-]?\d+\s*$/.test(written) && Number(written) <= MAX_CONNECT_TIMEOUT_SECONDS;
}
