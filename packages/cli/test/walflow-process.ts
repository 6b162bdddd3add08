import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ProcessRole } from '@walflow/server';
import { childEnvironment, waitFor } from '@walflow/testing';

/**
 * The built CLI as users get it (the package's bin, which runs the bundle `pnpm build` makes): spawned with node
 * directly, so a kill -9 hits walflow itself and nothing survives it.
 */
export const CLI = fileURLToPath(new URL('../dist/walflow.js', import.meta.url));

export interface WalflowChild {
  process: ChildProcess;
  /** stdout and stderr, interleaved as they arrived. */
  output(): string;
  stdout(): string;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

export function spawnWalflow(args: string[], env: Record<string, string>): WalflowChild {
  let output = '';
  let stdout = '';
  const child = spawn(process.execPath, [CLI, ...args], {
    env: childEnvironment({ WALFLOW_LOG_LEVEL: 'debug', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group
  });
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // On 'close', once stdout and stderr are read to their end: on 'exit' the last lines may still be on their way.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    process: child,
    output: () => output,
    stdout: () => stdout,
    exited,
    kill: (signal) => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    },
  };
}

/** Runs a CLI command to completion. */
export async function runWalflow(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string; stdout: string }> {
  const child = spawnWalflow(args, env);
  const code = await child.exited;
  return { code, output: child.output(), stdout: child.stdout() };
}

/** What each role logs once it is at work. */
const READY: Record<ProcessRole, string> = {
  all: 'replication streaming',
  consumer: 'replication streaming',
  worker: 'listening for queued runs',
  http: 'walflow started',
};

/** Starts `walflow start` (with `--role` when given) and waits until it is at work: streaming, unless a worker or http. */
export async function startWalflowProcess(env: Record<string, string>, role?: ProcessRole): Promise<WalflowChild> {
  const child = spawnWalflow(role === undefined ? ['start'] : ['start', '--role', role], env);
  const ready = READY[role ?? 'all'];
  try {
    await waitFor(`walflow start to log "${ready}"`, () => child.output().includes(ready) || child.process.exitCode !== null, { timeoutMs: 30_000 });
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${child.output().slice(-3000)}`);
  }
  if (child.process.exitCode !== null) throw new Error(`walflow start exited with ${child.process.exitCode}:\n${child.output()}`);
  return child;
}
