import { migrate } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('create the replication slot and bring the walflow schema up to date (safe to run again)')
    .action(async () => {
      const context = commandContext({ logToStdout: false });
      const result = await withDatabase(context, (db) => migrate({ db, slotName: context.config.slotName, logger: context.logger, decoder: context.config.decoder }));
      const slot = result.slotCreated ? `created replication slot ${context.config.slotName}` : `replication slot ${context.config.slotName} exists`;
      const migrations = result.applied.length === 0 ? 'schema up to date' : `applied ${result.applied.join(', ')}`;
      process.stdout.write(`${slot}; ${migrations}\n`);
    });
}
