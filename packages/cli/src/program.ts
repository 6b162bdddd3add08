import { Command } from 'commander';
import { registerEvents } from './commands/events.js';
import { registerExplain } from './commands/explain.js';
import { registerMigrate } from './commands/migrate.js';
import { registerRepair } from './commands/repair.js';
import { registerStart } from './commands/start.js';
import { registerWorkflows } from './commands/workflows.js';

export function createProgram(): Command {
  const program = new Command('walflow')
    .description('committed PostgreSQL writes → events → workflow runs')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  registerEvents(program);
  registerExplain(program);
  registerMigrate(program);
  registerRepair(program);
  registerStart(program);
  registerWorkflows(program);
  return program;
}
