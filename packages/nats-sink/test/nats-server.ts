import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { waitFor } from '@walflow/testing';

/** A nats-server with JetStream of one test file's own: its own directory, its own port, never the shared one. */
export interface TestNatsServer {
  /** `nats://127.0.0.1:<port>`, the same across restarts. */
  readonly url: string;
  /** Stops the server (SIGTERM: JetStream flushes its store); the port and the store are kept for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  start(): Promise<void>;
  /** Freezes it (SIGSTOP): its connections stay open and nothing is answered, until resume(). */
  pause(): void;
  resume(): void;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

/** Debian's package installs the binary in /usr/sbin, which is not on every PATH. */
async function findNatsServer(): Promise<string> {
  const directories = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin'];
  for (const directory of directories.filter((entry) => entry !== '')) {
    const candidate = join(directory, 'nats-server');
    if (await access(candidate).then(() => true, () => false)) return candidate;
  }
  throw new Error('nats-server is not installed: apt-get install nats-server (the JetStream sink tests start their own)');
}

/** `maxPayload`: the largest message the server takes (its max_payload; 1 MiB by default). */
export async function startNatsServer(options: { maxPayload?: number } = {}): Promise<TestNatsServer> {
  const binary = await findNatsServer();
  const directory = await mkdtemp(join(tmpdir(), 'walflow-nats-'));
  const configuration = join(directory, 'nats.conf');
  await writeFile(configuration, options.maxPayload === undefined ? '' : `max_payload: ${options.maxPayload}\n`);
  let child: ChildProcess | null = null;
  let output = '';
  let port = -1; // nats-server picks a free one the first time

  const launch = async (): Promise<void> => {
    output = '';
    const started = spawn(binary, ['-c', configuration, '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(directory, 'store'), '--ports_file_dir', directory, '-n', `walflow-test-${process.pid}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // The server writes its ports once it accepts clients, JetStream enabled.
    const portsFile = join(directory, `nats-server_${started.pid}.ports`);
    const ports = await waitFor('nats-server to listen', async () => {
      if (started.exitCode !== null) throw new Error(`nats-server exited with ${started.exitCode}: ${output}`);
      return readFile(portsFile, 'utf8').then((text) => JSON.parse(text) as { nats: string[] }, () => undefined);
    });
    const url = ports.nats[0];
    if (url === undefined) throw new Error(`nats-server reported no client port: ${JSON.stringify(ports)}`);
    port = Number(new URL(url).port);
  };

  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null || running.pid === undefined) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    // A paused server would take SIGTERM only once continued.
    running.kill('SIGCONT');
    running.kill('SIGTERM');
    await exited;
  };

  // A runner that exits without afterAll (a hook timeout, an interrupted run) must not leave the server behind.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  await launch();
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    stop,
    start: launch,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    dispose: async () => {
      process.off('exit', killOnExit);
      await stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
