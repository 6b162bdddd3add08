import { startWalflow } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext } from '../context.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('consume the WAL, dispatch events, run workflows and serve /healthz until SIGTERM')
    .action(async () => {
      const context = commandContext({ logToStdout: true });
      const walflow = await startWalflow(context.config, context.logger);
      await new Promise<void>((resolve) => {
        const shutdown = (signal: NodeJS.Signals): void => {
          context.logger.info({ signal }, 'shutting down');
          process.off('SIGTERM', shutdown);
          process.off('SIGINT', shutdown);
          resolve();
        };
        process.on('SIGTERM', shutdown);
        process.on('SIGINT', shutdown);
      });
      await walflow.stop();
    });
}
