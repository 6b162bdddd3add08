import { CleanupStack } from './demo/cleanup-stack.js';
import { runDemo } from './demo/run-demo.js';

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const cleanup = new CleanupStack();
let failed = false;
try {
  const { claimsHold } = await runDemo(process.env, cleanup, say);
  if (!claimsHold) {
    failed = true;
    process.stderr.write('demo failed: a claim does not hold (see the last table)\n');
  }
} catch (error) {
  failed = true;
  process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
}
try {
  await cleanup.run();
  say('\nStopped everything the demo started.');
} catch (error) {
  failed = true;
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
}
process.exitCode = failed ? 1 : 0;
