import { execFile, spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** PostgreSQL refuses to run as root, so as root its programs run as the `postgres` OS user. */
export const runningAsRoot = process.getuid?.() === 0;

/** The command line that runs `file args` as the right OS user. */
export function asPostgresUser(file: string, args: readonly string[]): [string, string[]] {
  return runningAsRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, [...args]];
}

/** Runs a PostgreSQL program and resolves with its output; rejects with stderr included. */
export async function runPostgresTool(
  file: string,
  args: readonly string[],
  timeoutMs = 120_000,
): Promise<{ stdout: string; stderr: string }> {
  const [command, commandArgs] = asPostgresUser(file, args);
  try {
    return await execFileAsync(command, commandArgs, { encoding: 'utf8', timeout: timeoutMs });
  } catch (error) {
    const details = error as { stderr?: string; stdout?: string; message?: string };
    const output = [details.stderr, details.stdout].filter((text) => text?.trim()).join('\n').trim();
    throw new Error(`${[command, ...commandArgs].join(' ')} failed: ${output || details.message}`, { cause: error });
  }
}

/** Synchronous variant for process 'exit' handlers, where nothing asynchronous runs any more. */
export function runPostgresToolSync(file: string, args: readonly string[], timeoutMs = 10_000): SpawnSyncReturns<string> {
  const [command, commandArgs] = asPostgresUser(file, args);
  return spawnSync(command, commandArgs, { encoding: 'utf8', timeout: timeoutMs, stdio: 'pipe' });
}
