import { listAudit, parseTime } from '@walflow/server';
import type { Command } from 'commander';
import { timeText } from '../option-text.js';
import { commandContext, withDatabase } from '../context.js';
import { wholeNumber } from '../whole-number.js';

export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description('operator actions')
    .command('list')
    .description('operator actions, newest first')
    .option('--since <time>', 'ISO-8601 or relative (-7d)', timeText, '-30d')
    .option('--limit <n>', 'at most this many', wholeNumber(1, 10_000), 100)
    .option('--json', 'print JSON')
    .action(async (options: { since: string; limit: number; json?: boolean }) => {
      const since = parseTime(options.since);
      const context = commandContext({ logToStdout: false });
      const rows = await withDatabase(context, (db) => listAudit(db, { since, limit: options.limit }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      for (const row of rows) {
        process.stdout.write(`${row.at.toISOString()}  ${row.actor}  ${row.action}  ${row.target ?? ''}  ${JSON.stringify(row.arguments)}\n`);
      }
      if (rows.length === 0) process.stdout.write('no operator actions\n');
    });
}
