import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PEER_MAIN = fileURLToPath(new URL('./peer-main.js', import.meta.url));
const STOP_TIMEOUT_MS = 30_000;

export interface PeerProcess {
  /** Resolves once the peer consumes; rejects if it exits first. */
  ready: Promise<void>;
  /** SIGTERM; resolves with null after a clean exit, or with what went wrong (a crash, a hang). */
  stop(): Promise<string | null>;
}

/** Starts the named peer in a child process (see peer-main.ts). */
export function spawnPeer(name: string, url: string, database: string): PeerProcess {
  const child = spawn(process.execPath, [PEER_MAIN, name, url, database], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    void exited.then((code) => reject(new Error(`peer ${name} exited with ${code} before it was ready:\n${stderr}`)));
  });
  ready.catch(() => {});
  return {
    ready,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      if (code === 0) return null;
      const lastLine = stderr.trim().split('\n').find((line) => /Error/.test(line)) ?? `exit code ${code ?? child.signalCode}`;
      return lastLine.trim();
    },
  };
}
