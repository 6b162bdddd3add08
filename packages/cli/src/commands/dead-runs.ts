import { discardDeadRun, listDeadRuns, retryDeadRun } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';
import { wholeNumber } from '../whole-number.js';
import { actOnIds } from './act-on-ids.js';

export function registerDeadRuns(program: Command): void {
  const runs = program.command('dead-runs').description('workflow runs that used up their attempts');

  runs
    .command('list')
    .description('dead runs, newest first')
    .option('--limit <n>', 'at most this many', wholeNumber(1, 10_000), 100)
    .option('--json', 'print JSON')
    .action(async (options: { limit: number; json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const list = await withDatabase(context, (db) => listDeadRuns(db, { limit: options.limit }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      for (const run of list) {
        const workflow = run.workflow ?? `${run.workflowId} (deleted)`;
        process.stdout.write(`${run.id}  ${run.finishedAt?.toISOString() ?? '?'}  ${run.tenantId}  ${workflow}  ${run.eventType}  ${run.attempts} attempts\n    ${run.lastError ?? ''}\n`);
      }
      if (list.length === 0) process.stdout.write('no dead runs\n');
    });

  for (const [verb, description] of [
    ['retry', 'queue them again, with a fresh allowance of attempts; actions that succeeded are skipped'],
    ['discard', 'close them without retrying (cancelled, keeping their last error)'],
  ] as const) {
    runs
      .command(verb)
      .description(description)
      .argument('<ids...>', 'run ids')
      .action((ids: string[]) =>
        // Audited as the console audits them.
        actOnIds(ids, 'run', `run.${verb}`, async (db, id) => {
          await (verb === 'retry' ? retryDeadRun(db, id) : discardDeadRun(db, id));
          return `${verb === 'retry' ? 'retried' : 'discarded'} ${id}`;
        }),
      );
  }
}
