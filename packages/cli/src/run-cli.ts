import { isWalflowError } from '@walflow/core';
import { CommanderError } from 'commander';
import { errorMessage } from './error-message.js';
import { createProgram } from './program.js';

/**
 * Runs one walflow command line (`argv` as in process.argv: node, the script, then the arguments) and sets the
 * process's exit code. The bin (walflow.ts) calls it through the bundle, main.ts without.
 */
export async function runCli(argv: readonly string[]): Promise<void> {
  try {
    await createProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has said what was wrong (or shown the help it was asked for).
      process.exitCode = error.exitCode === 0 ? 0 : 2;
    } else {
      console.error(`walflow: ${errorMessage(error)}`);
      process.exitCode = isWalflowError(error, 'config_invalid') ? 2 : 1;
    }
  }
}
