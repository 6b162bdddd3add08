import { Command } from 'commander';
import { registerAudit } from './commands/audit.js';
import { registerDeadLetters } from './commands/dead-letters.js';
import { registerDeadRuns } from './commands/dead-runs.js';
import { registerEvents } from './commands/events.js';
import { registerExplain } from './commands/explain.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPrune } from './commands/prune.js';
import { registerRepair } from './commands/repair.js';
import { registerReplay } from './commands/replay.js';
import { registerStart } from './commands/start.js';
import { registerStatus } from './commands/status.js';
import { registerWorkflows } from './commands/workflows.js';

export function createProgram(): Command {
  const program = new Command('walflow')
    .description('committed PostgreSQL writes → events → workflow runs')
    // Argument errors are thrown, not exited on, so main gives them the exit code of invalid arguments.
    .exitOverride()
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  registerAudit(program);
  registerDeadLetters(program);
  registerDeadRuns(program);
  registerEvents(program);
  registerExplain(program);
  registerMigrate(program);
  registerPrune(program);
  registerRepair(program);
  registerReplay(program);
  registerStart(program);
  registerStatus(program);
  registerWorkflows(program);
  return program;
}
