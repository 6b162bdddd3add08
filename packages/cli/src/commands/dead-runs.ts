import { discardDeadRun, listDeadRuns, retryDeadRun } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';
import { wholeNumber } from '../whole-number.js';
import { registerRetryAndDiscard } from './retry-and-discard.js';

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

  registerRetryAndDiscard(runs, {
    noun: 'run',
    audit: 'run',
    retry: {
      description: 'queue them again, with a fresh allowance of attempts; actions that succeeded are skipped',
      act: (db, id) => retryDeadRun(db, id).then(() => `retried ${id}`),
    },
    discard: {
      description: 'close them without retrying (cancelled, keeping their last error)',
      act: (db, id) => discardDeadRun(db, id).then(() => `discarded ${id}`),
    },
  });
}
