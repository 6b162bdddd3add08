import { loadCatalog, recordAudit, repairSlot } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';

export function registerRepair(program: Command): void {
  program
    .command('repair')
    .description('recreate a lost or invalidated replication slot and dispatch the outbox rows it missed (stop walflow start first)')
    .action(async () => {
      const context = commandContext({ logToStdout: false });
      const { config, logger } = context;
      const catalog = config.catalogModule === undefined ? undefined : await loadCatalog(config.catalogModule);
      // It records the events it recovers: following the log must wait for its transaction, as for start's.
      const result = await withDatabase(
        context,
        async (db) => {
          const repaired = await repairSlot({ db, databaseUrl: config.databaseUrl, slotName: config.slotName, logger, catalog, maxDepth: config.maxDepth, decoder: config.decoder });
          await recordAudit(db, { actor: context.operator, action: 'slot.repair', target: config.slotName, arguments: { ...repaired } });
          return repaired;
        },
        { recordsEvents: true, changesState: true },
      );
      process.stdout.write(
        `${result.droppedSlot ? 'dropped and recreated' : 'created'} replication slot ${config.slotName} at ${result.consistentPoint}; ` +
          `recovered ${result.recovered} events from the outbox, parked ${result.parked}\n`,
      );
    });
}
