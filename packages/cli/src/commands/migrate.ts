import { DEFAULT_LOCK_RETRY_FOR_MS, DEFAULT_LOCK_TIMEOUT_MS, migrate } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';
import { wholeNumber } from '../whole-number.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('create the replication slot and bring the walflow schema up to date (safe to run again)')
    .option(
      '--lock-timeout <ms>',
      "the longest a migration waits for any one lock (writes to that table wait behind it) before the run rolls back and tries again; 0 waits as long as it takes",
      wholeNumber(0, 3_600_000),
      DEFAULT_LOCK_TIMEOUT_MS,
    )
    .option('--retry-for <seconds>', 'how long to keep trying again after lock timeouts', wholeNumber(0, 86_400), DEFAULT_LOCK_RETRY_FOR_MS / 1000)
    .action(async (options: { lockTimeout: number; retryFor: number }) => {
      const context = commandContext({ logToStdout: false });
      const result = await withDatabase(context, (db) =>
        migrate({
          db,
          slotName: context.config.slotName,
          logger: context.logger,
          decoder: context.config.decoder,
          lockTimeoutMs: options.lockTimeout,
          lockRetryForMs: options.retryFor * 1000,
        }),
      );
      const slot = result.slotCreated ? `created replication slot ${context.config.slotName}` : `replication slot ${context.config.slotName} exists`;
      const migrations = result.applied.length === 0 ? 'schema up to date' : `applied ${result.applied.join(', ')}`;
      process.stdout.write(`${slot}; ${migrations}\n`);
    });
}
