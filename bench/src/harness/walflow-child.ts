import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@walflow/testing/runtime';
import { residentMemory, type ResidentMemory } from './memory.js';

/** The repository walflow is built in: CPU profiles name its files relative to it. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The built CLI as users run it (the bin). walflow runs as a child process so its resident memory is its own. */
const CLI = `${REPOSITORY_ROOT}packages/cli/dist/walflow.js`;
/** The same CLI unbundled, for CPU profiles: their frames then name each package and file, not lines of the bundle. */
const UNBUNDLED_CLI = `${REPOSITORY_ROOT}packages/cli/dist/main.js`;

/** How much of walflow's output is kept for error messages. */
const OUTPUT_TAIL_CHARS = 20_000;

export interface WalflowChildOptions {
  databaseUrl: string;
  slot: string;
  /** Extra WALFLOW_* variables; everything else keeps walflow's defaults. */
  env?: Record<string, string>;
  /** Write a V8 CPU profile (`node --cpu-prof`) into this directory when the process exits; runs the unbundled CLI. */
  cpuProfileDir?: string;
}

export interface WalflowChild {
  pid: number;
  /** Date.now() just before the process was spawned. */
  spawnedAt: number;
  /** Resolves with the HTTP port once `walflow started` is logged. */
  started: Promise<number>;
  /** Resolves with Date.now() once the consumer streams from the slot. */
  streaming: Promise<number>;
  memory(): Promise<ResidentMemory>;
  /** SIGTERM (walflow records and acknowledges what it received, then exits 0); SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

interface LogLine {
  msg?: string;
  httpPort?: number;
}

export function spawnWalflow(options: WalflowChildOptions): WalflowChild {
  const command = options.cpuProfileDir === undefined ? [CLI] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`, UNBUNDLED_CLI];
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...command, 'start'], {
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      WALFLOW_SLOT: options.slot,
      WALFLOW_HTTP_PORT: '0',
      WALFLOW_HTTP_HOST: '127.0.0.1',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${command.at(-1)}`);
  let tail = '';
  let partial = '';
  let onPort: (port: number) => void = () => {};
  let onStreaming: (at: number) => void = () => {};
  const started = new Promise<number>((resolve) => (onPort = resolve));
  const streaming = new Promise<number>((resolve) => (onStreaming = resolve));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const keep = (text: string): void => {
    tail = (tail + text).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stderr.on('data', (chunk: Buffer) => keep(chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    keep(text);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const entry = parseLogLine(line);
      if (entry.msg === 'walflow started' && entry.httpPort !== undefined) onPort(entry.httpPort);
      if (entry.msg === 'replication streaming') onStreaming(Date.now());
    }
  });
  const failOnEarlyExit = <T>(promise: Promise<T>, what: string): Promise<T> => {
    const raced = Promise.race([promise, exited.then((code) => Promise.reject(new Error(`walflow exited with ${code} before ${what}:\n${tail}`)))]);
    // Nobody may be waiting for this milestone when walflow exits: that is not an error of its own.
    raced.catch(() => {});
    return raced;
  };

  const pid = child.pid;
  return {
    pid,
    spawnedAt,
    started: failOnEarlyExit(started, 'it started'),
    streaming: failOnEarlyExit(streaming, 'it streamed'),
    memory: () => residentMemory(pid),
    async stop(timeoutMs = 60_000) {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const stopped = await waitFor('walflow to stop', () => child.exitCode !== null || child.signalCode !== null, { timeoutMs, intervalMs: 50 }).catch(() => false);
      if (stopped === false) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`walflow did not stop within ${timeoutMs} ms of SIGTERM:\n${tail}`);
      }
      if (child.exitCode !== 0) throw new Error(`walflow exited with ${child.exitCode ?? child.signalCode}:\n${tail}`);
    },
  };
}

function parseLogLine(line: string): LogLine {
  if (!line.startsWith('{')) return {};
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return {};
  }
}
