import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { summariseCpuProfile, type ProfileSummary } from './cpu-profile.js';
import { topStatements, trackStatements, type StatementCost } from './pg-stat-statements.js';
import { REPOSITORY_ROOT } from './walflow-child.js';

/** What --profile reports for one phase: walflow's CPU profile and PostgreSQL's costliest statements. */
export interface WalflowProfile {
  cpu: ProfileSummary;
  statements: StatementCost[];
}

export interface WalflowProfiling {
  /** Where the walflow process writes its CPU profile (spawnWalflow's cpuProfileDir). */
  dir: string;
  /** Reads both once walflow has exited (node writes its profile on exit). */
  collect(): Promise<WalflowProfile>;
}

/**
 * With --profile, prepares the profiling of one phase, before walflow is spawned (statement tracking applies to
 * the sessions it opens from then on); without it, undefined.
 */
export async function profilePhase(profileRoot: string | undefined, phase: string, url: string): Promise<WalflowProfiling | undefined> {
  if (profileRoot === undefined) return undefined;
  const dir = join(profileRoot, phase.replace(/[^0-9a-z]+/gi, '_'));
  await mkdir(dir, { recursive: true });
  await trackStatements(url);
  return {
    dir,
    collect: async () => ({ cpu: await summariseCpuProfile(dir, REPOSITORY_ROOT), statements: await topStatements(url, 15) }),
  };
}
