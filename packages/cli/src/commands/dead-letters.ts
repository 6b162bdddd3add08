import { discardDeadLetter, listDeadLetters, retryDeadLetter } from '@walflow/executor';
import { recordAudit } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext, withDatabase } from '../context.js';

export function registerDeadLetters(program: Command): void {
  const letters = program.command('dead-letters').description('outbox rows and events that could not be recorded');

  letters
    .command('list')
    .description('open dead letters, newest first')
    .option('--tenant <id>', 'only this tenant')
    .option('--all', 'include retried and discarded ones')
    .option('--json', 'print JSON')
    .action(async (options: { tenant?: string; all?: boolean; json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const list = await withDatabase(context, (db) =>
        listDeadLetters(db, { ...(options.tenant === undefined ? {} : { tenantId: options.tenant }), includeResolved: options.all ?? false }),
      );
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      for (const letter of list) {
        const state = letter.resolution === null ? 'open' : letter.resolution;
        process.stdout.write(`${letter.id}  ${letter.createdAt.toISOString()}  ${letter.tenantId}  ${letter.eventType ?? '?'}  ${letter.code}  ${state}\n    ${letter.reason}\n`);
      }
      if (list.length === 0) process.stdout.write('no dead letters\n');
    });

  for (const [verb, description] of [
    ['retry', 'put the rows back into the outbox, under their original ids'],
    ['discard', 'close them without retrying'],
  ] as const) {
    letters
      .command(verb)
      .description(description)
      .argument('<ids...>', 'dead letter ids')
      .action(async (ids: string[]) => {
        const context = commandContext({ logToStdout: false });
        await withDatabase(context, async (db) => {
          for (const id of ids) {
            if (verb === 'retry') {
              const { outboxId } = await retryDeadLetter(db, id);
              process.stdout.write(`retried ${id} as outbox row ${outboxId}\n`);
            } else {
              await discardDeadLetter(db, id);
              process.stdout.write(`discarded ${id}\n`);
            }
            await recordAudit(db, { actor: context.operator, action: `dead_letter.${verb}`, target: id });
          }
        });
      });
  }
}
