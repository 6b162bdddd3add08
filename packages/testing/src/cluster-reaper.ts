import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { asPostgresUser, runPostgresToolSync } from './run-as-postgres.js';

/** A local cluster that must not outlive this process. */
export interface ReapableCluster {
  pgCtl: string;
  dataDir: string;
  /** The temp directory holding the data directory, socket and log; removed with the cluster. */
  dir: string;
}

interface Tracked {
  cluster: ReapableCluster;
  watchdog: ChildProcess | undefined;
}

const tracked = new Set<Tracked>();
let exitHandlerInstalled = false;

// The watchdog outlives a SIGKILLed node process, which runs no 'exit' handler: it polls the parent pid and then
// stops the cluster and removes its directory. Arguments: parent pid, directory, stop command.
const watchdogScript = [
  'parent=$1; dir=$2; shift 2',
  'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
  '"$@" >/dev/null 2>&1',
  'rm -rf "$dir"',
].join('\n');

function startWatchdog(cluster: ReapableCluster): ChildProcess | undefined {
  const [command, args] = asPostgresUser(cluster.pgCtl, ['stop', '-m', 'immediate', '-D', cluster.dataDir]);
  try {
    const child = spawn('/bin/sh', ['-c', watchdogScript, 'sh', String(process.pid), cluster.dir, command, ...args], {
      detached: true,
      stdio: 'ignore',
    });
    child.on('error', () => {});
    child.unref();
    return child;
  } catch {
    return undefined;
  }
}

function killWatchdog(watchdog: ChildProcess | undefined): void {
  if (watchdog?.pid === undefined) return;
  try {
    // Negative pid: the whole detached group, so its `sleep` goes too.
    process.kill(-watchdog.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function stopAllSync(): void {
  for (const entry of tracked) {
    killWatchdog(entry.watchdog);
    runPostgresToolSync(entry.cluster.pgCtl, ['stop', '-m', 'immediate', '-w', '-t', '10', '-D', entry.cluster.dataDir]);
    rmSync(entry.cluster.dir, { recursive: true, force: true });
  }
  tracked.clear();
}

/** Makes sure the cluster is stopped when this process exits or dies; call the returned function after a clean stop. */
export function trackCluster(cluster: ReapableCluster): () => void {
  if (!exitHandlerInstalled) {
    process.on('exit', stopAllSync);
    exitHandlerInstalled = true;
  }
  const entry: Tracked = { cluster, watchdog: startWatchdog(cluster) };
  tracked.add(entry);
  return () => {
    killWatchdog(entry.watchdog);
    tracked.delete(entry);
  };
}
