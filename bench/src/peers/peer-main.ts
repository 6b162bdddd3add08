import { peerNamed } from './registry.js';

/**
 * Runs one peer in a process of its own until SIGTERM: `node peer-main.js <peer> <url> <database>`. A peer that
 * throws from inside its library (pg-transactional-outbox does, when it is stopped under load) takes down only
 * this process, and the figure reports it.
 */
async function main(): Promise<void> {
  const [name, url, database] = process.argv.slice(2);
  if (name === undefined || url === undefined || database === undefined) throw new Error('usage: peer-main <peer> <url> <database>');
  const running = await peerNamed(name).start(url, database);
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await running.stop();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
