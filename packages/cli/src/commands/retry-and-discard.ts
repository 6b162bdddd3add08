import { isUuid, WalflowError, type WalflowDatabase } from '@walflow/core';
import { recordAudit } from '@walflow/server';
import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import { commandContext, withDatabase } from '../context.js';
import { errorMessage } from '../error-message.js';

/** What one verb does to one row: its line of output. */
interface Verb {
  description: string;
  act: (db: Kysely<WalflowDatabase>, id: string) => Promise<string>;
}

/**
 * `<parent> retry|discard <ids…>` for rows an operator closes by id (dead letters, dead runs). Each id is acted
 * on in turn, in one transaction with its audit entry (`<audit>.<verb>`, the console's names), and printed. Every id is checked to be a uuid
 * first: an id that is not must not leave the rows before it done and those after it not. A row refused (not
 * found, already closed, its event pruned) is said so on stderr and the others are still acted on, so that the
 * same command line, run again once the refusal is mended, reaches every row; the exit code is then 1.
 */
export function registerRetryAndDiscard(parent: Command, rows: { noun: string; audit: string; retry: Verb; discard: Verb }): void {
  for (const verb of ['retry', 'discard'] as const) {
    parent
      .command(verb)
      .description(rows[verb].description)
      .argument('<ids...>', `${rows.noun} ids`)
      .action(async (ids: string[]) => {
        const bad = ids.find((id) => !isUuid(id));
        if (bad !== undefined) throw new WalflowError('config_invalid', `not a ${rows.noun} id (a uuid): ${bad}`);
        const context = commandContext({ logToStdout: false });
        await withDatabase(context, async (db) => {
          // An id given twice (in either case) is acted on once: the second time it would no longer be found.
          for (const id of new Set(ids.map((id) => id.toLowerCase()))) {
            try {
              const line = await db.transaction().execute(async (trx) => {
                const done = await rows[verb].act(trx, id);
                await recordAudit(trx, { actor: context.operator, action: `${rows.audit}.${verb}`, target: id });
                return done;
              });
              process.stdout.write(`${line}\n`);
            } catch (error) {
              console.error(`walflow: ${errorMessage(error)}`);
              process.exitCode = 1;
            }
          }
        }, { changesState: true });
      });
  }
}
