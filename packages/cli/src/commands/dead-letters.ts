import { countDeadLetters, discardDeadLetter, listDeadLetters, retryDeadLetter } from '@walflow/executor';
import type { Command } from 'commander';
import { nonEmptyText } from '../option-text.js';
import { commandContext, withDatabase } from '../context.js';
import { registerRetryAndDiscard } from './retry-and-discard.js';
import { wholeNumber } from '../whole-number.js';

export function registerDeadLetters(program: Command): void {
  const letters = program.command('dead-letters').description('outbox rows and events that could not be recorded');

  letters
    .command('list')
    .description('open dead letters, newest first')
    .option('--tenant <id>', 'only this tenant', nonEmptyText)
    .option('--all', 'include retried and discarded ones')
    .option('--limit <n>', 'at most this many', wholeNumber(1, 10_000), 100)
    .option('--json', 'print JSON')
    .action(async (options: { tenant?: string; all?: boolean; limit: number; json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const filter = { ...(options.tenant === undefined ? {} : { tenantId: options.tenant }), includeResolved: options.all ?? false };
      const { list, total } = await withDatabase(context, async (db) => {
        const letters = await listDeadLetters(db, { ...filter, limit: options.limit });
        return { list: letters, total: letters.length < options.limit ? letters.length : await countDeadLetters(db, filter) };
      });
      // With --json on stderr, so the output stays data.
      const truncated = total > list.length ? `showing ${list.length} of ${total} dead letters (--limit)\n` : '';
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        process.stderr.write(truncated);
        return;
      }
      for (const letter of list) {
        const state = letter.resolution === null ? 'open' : letter.resolution;
        process.stdout.write(`${letter.id}  ${letter.createdAt.toISOString()}  ${letter.tenantId}  ${letter.eventType ?? '?'}  ${letter.code}  ${state}\n    ${letter.reason}\n`);
      }
      if (list.length === 0) process.stdout.write('no dead letters\n');
      process.stdout.write(truncated);
    });

  registerRetryAndDiscard(letters, {
    noun: 'dead letter',
    audit: 'dead_letter',
    retry: {
      description: 'put the rows back into the outbox, under their original ids',
      act: async (db, id) => `retried ${id} as outbox row ${(await retryDeadLetter(db, id)).outboxId}`,
    },
    discard: { description: 'close them without retrying', act: (db, id) => discardDeadLetter(db, id).then(() => `discarded ${id}`) },
  });
}
