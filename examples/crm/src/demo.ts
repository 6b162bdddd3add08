import { CleanupStack } from './demo/cleanup-stack.js';
import { runDemo } from './demo/run-demo.js';

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const cleanup = new CleanupStack();
// Ctrl-C stops what the demo started before the process ends: a slot left on the server would keep its WAL for ever.
// A signal within a second of the first is the same Ctrl-C passed on twice (pnpm forwards the terminal's); a later
// one ends the process at once.
let interrupted: number | undefined;
const interrupt = (signal: NodeJS.Signals): void => {
  if (interrupted !== undefined) {
    if (Date.now() - interrupted > 1000) process.exit(130);
    return;
  }
  interrupted = Date.now();
  process.stderr.write(`demo interrupted by ${signal}: stopping what it started\n`);
  // The day goes on failing against what is stopped, then waits for the same cleanup; should it hang, this exits.
  void cleanup
    .run()
    .catch(() => undefined)
    .finally(() => process.exit(130));
};
process.on('SIGINT', interrupt);
process.on('SIGTERM', interrupt);
let failed = false;
try {
  const { claimsHold } = await runDemo(process.env, cleanup, say);
  if (!claimsHold) {
    failed = true;
    process.stderr.write('demo failed: a claim does not hold (see the last table)\n');
  }
} catch (error) {
  failed = true;
  // Once interrupted, the day fails against what was stopped under it: that is no news.
  if (interrupted === undefined) process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
}
try {
  await cleanup.run();
  say('\nStopped everything the demo started.');
} catch (error) {
  failed = true;
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
}
process.exitCode = interrupted !== undefined ? 130 : failed ? 1 : 0;
