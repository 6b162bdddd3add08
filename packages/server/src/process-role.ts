import { WalflowError } from '@walflow/core';

/** What `walflow start` runs: everything, or one part, so that each part is placed and scaled on its own. */
export const PROCESS_ROLES = ['all', 'consumer', 'worker', 'http'] as const;
export type ProcessRole = (typeof PROCESS_ROLES)[number];

/** The parts of a walflow process. */
export interface ProcessParts {
  /** The replication consumer (leader or standby) with the dispatcher, partition upkeep and the leader's daily prune. */
  consumer: boolean;
  /** The worker pool and its LISTEN connection. */
  workers: boolean;
  /** /healthz, /readyz, /health and /metrics. */
  http: boolean;
  /** The operator console under /console, when WALFLOW_CONSOLE_TOKEN is set too: with HTTP, and never on a worker. */
  console: boolean;
}

/**
 * A consumer serves HTTP too: /health and /readyz are mostly about the slot it reads. A worker serves HTTP only
 * when WALFLOW_HTTP_PORT is set (`httpPortChosen`), for its own metrics (its attempts and action durations, which
 * no other process counts); without it, it serves nothing, so any number of them fit on one machine.
 */
export function partsOf(role: ProcessRole, workerConcurrency: number, httpPortChosen = false): ProcessParts {
  switch (role) {
    case 'all':
      return { consumer: true, workers: workerConcurrency > 0, http: true, console: true };
    case 'consumer':
      return { consumer: true, workers: false, http: true, console: true };
    case 'worker':
      if (workerConcurrency === 0) throw new WalflowError('config_invalid', 'role worker needs WALFLOW_WORKER_CONCURRENCY of at least 1');
      return { consumer: false, workers: true, http: httpPortChosen, console: false };
    case 'http':
      return { consumer: false, workers: false, http: true, console: true };
  }
}
