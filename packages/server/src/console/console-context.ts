import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConsumerStatus } from '@walflow/cdc';
import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WalflowConfig } from '../config.js';
import type { HealthReport } from '../health-report.js';
import type { WalflowMetrics } from '../metrics.js';
import type { OverviewSamples } from './overview-samples.js';
import type { Principal, ConsoleAuth } from './session.js';
import type { Frame } from './pages/layout.js';
import type { SignedOutSessions } from './signed-out-sessions.js';
import type { ScopedSlots } from './scoped-slots.js';
import type { TokenAttempts } from './token-attempts.js';

/** What the running process lends the console. */
export interface ConsoleHost {
  config: WalflowConfig;
  logger: Logger;
  /** The last background health report (what /health serves). */
  health: () => HealthReport | null;
  consumerStatus: () => ConsumerStatus;
  /** The process's metrics: the overview's event rate follows its count of recorded events. */
  metrics: WalflowMetrics;
  /** Wakes this process's idle workers after runs were queued again. */
  onRunsQueued: () => void;
}

/** Everything a console request handler works with. */
export interface ConsoleContext {
  host: ConsoleHost;
  /** A pool of the console's own: operators cannot take the connections workers and the dispatcher need. */
  db: Kysely<WalflowDatabase>;
  auth: ConsoleAuth;
  signedOut: SignedOutSessions;
  samples: OverviewSamples;
  /** Aborted when the console closes: ends live streams. */
  closing: AbortSignal;
  /** Live event lists open (MAX_LIVE_STREAMS per scope). */
  liveStreams: ScopedSlots;
  /** Backtests running (MAX_BACKTESTS per scope and in all). */
  backtests: ScopedSlots;
  /** Failed sign-ins and bearer tokens per client address. */
  tokenAttempts: TokenAttempts;
}

/** One authenticated request. */
export interface ConsoleRequest {
  request: IncomingMessage;
  response: ServerResponse;
  url: URL;
  principal: Principal;
  nonce: string;
  /** Set on a page reached after an action: what the action did. */
  notice: Frame['notice'];
}

/** The frame every page of this request shares. */
export function frameOf(request: ConsoleRequest): Omit<Frame, 'title' | 'section'> {
  return { nonce: request.nonce, principal: request.principal, notice: request.notice };
}
