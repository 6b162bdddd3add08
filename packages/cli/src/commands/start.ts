import { PROCESS_ROLES, startWalflow, type ProcessRole } from '@walflow/server';
import { Option, type Command } from 'commander';
import { commandContext } from '../context.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('consume the WAL, dispatch events, run workflows and serve /healthz until SIGTERM (or one part of that: --role)')
    .addOption(new Option('--role <role>', 'what this process runs (default: WALFLOW_ROLE, else all)').choices(PROCESS_ROLES))
    .addHelpText(
      'after',
      `
Roles:
  all       everything below, in one process
  consumer  replication consumer and dispatcher (one leader per slot; standbys take over), housekeeping, HTTP
  worker    executes queued runs; run any number, on any machine; HTTP only when WALFLOW_HTTP_PORT is set, no console
  http      /healthz, /readyz, /health, /metrics and the console (when a token is set) only`,
    )
    .action(async (options: { role?: ProcessRole }) => {
      const context = commandContext({ logToStdout: true });
      // Listened for before start-up: a signal during it stops walflow once it has started, where Node's default
      // action would end the process half-way, connections open and the leader lock held until PostgreSQL notices.
      const shutdownRequested = new Promise<void>((resolve) => {
        const shutdown = (signal: NodeJS.Signals): void => {
          context.logger.info({ signal }, 'shutting down');
          process.off('SIGTERM', shutdown);
          process.off('SIGINT', shutdown);
          resolve();
        };
        process.on('SIGTERM', shutdown);
        process.on('SIGINT', shutdown);
      });
      const walflow = await startWalflow({ ...context.config, role: options.role ?? context.config.role }, context.logger);
      await shutdownRequested;
      // stop() has logged each part that failed to stop; the exit code says that one did.
      const stoppedCleanly = await walflow.stop().then(
        () => true,
        () => false,
      );
      // Everything is closed and runs still going were handed back: an action past the grace period (a webhook
      // waiting for its timeout), or whatever a part that failed to stop left open, must not keep the process alive.
      process.exit(stoppedCleanly ? 0 : 1);
    });
}
