import type { MountedHandler } from '../http-server.js';
import { createDatabase } from '../database.js';
import type { ConsoleHost } from './console-context.js';
import { consoleHandler } from './console-router.js';
import type { ConsoleSettings } from './console-settings.js';
import { MAX_BACKTESTS, MAX_BACKTESTS_PER_SCOPE } from './action-handlers.js';
import { MAX_LIVE_STREAMS } from './live-events.js';
import { eventsRecorded, lagOf, OverviewSamples, SAMPLE_INTERVAL_MS } from './overview-samples.js';
import { TokenAttempts } from './token-attempts.js';
import { ScopedSlots } from './scoped-slots.js';
import { ConsoleAuth } from './session.js';
import { SignedOutSessions } from './signed-out-sessions.js';
import { assertCanScopeTenants } from './tenant-scope.js';

export interface OperatorConsole {
  /** Mounted under /console on the process's HTTP server. */
  handle: MountedHandler;
  /** Ends live streams and sampling, closes the console's database pool. */
  close(): Promise<void>;
}

/** Connections of the console's own pool: a page's reads, a few live lists, a backtest. */
const POOL_SIZE = 4;
/**
 * The console's sessions: not walflow's recording name, whose open transactions following the log waits for (a
 * backtest's dry run would make every live list start at its beginning).
 */
const CONSOLE_APPLICATION_NAME = 'walflow-console';
/** No page's statement holds one of the few connections longer (a backtest sets its own limit). */
const STATEMENT_TIMEOUT_MS = 30_000;

export async function startConsole(settings: ConsoleSettings, host: ConsoleHost): Promise<OperatorConsole> {
  const db = createDatabase(host.config.databaseUrl, host.logger, { max: POOL_SIZE, applicationName: CONSOLE_APPLICATION_NAME, statementTimeoutMs: STATEMENT_TIMEOUT_MS });
  try {
    if (settings.tenantTokens.size > 0) await assertCanScopeTenants(db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const samples = new OverviewSamples();
  const sample = async (): Promise<void> => {
    try {
      samples.record(Date.now(), await eventsRecorded(host.metrics), lagOf(host.health()));
    } catch (error) {
      host.logger.warn({ err: error }, 'could not sample the console overview');
    }
  };
  await sample();
  const sampling = setInterval(() => void sample(), SAMPLE_INTERVAL_MS);
  sampling.unref();
  const closing = new AbortController();
  const handle = consoleHandler({
    host,
    db,
    auth: new ConsoleAuth(settings),
    signedOut: new SignedOutSessions(db),
    samples,
    closing: closing.signal,
    liveStreams: new ScopedSlots(MAX_LIVE_STREAMS),
    backtests: new ScopedSlots(MAX_BACKTESTS_PER_SCOPE, MAX_BACKTESTS),
    tokenAttempts: new TokenAttempts(),
  });
  return {
    handle,
    async close() {
      clearInterval(sampling);
      closing.abort();
      await db.destroy();
    },
  };
}
