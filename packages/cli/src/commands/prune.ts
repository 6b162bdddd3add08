import { parseTime, processRetentionDays, prune, recordAudit } from '@walflow/server';
import type { WalflowDatabase } from '@walflow/core';
import { InvalidArgumentError, type Command } from 'commander';
import type { Kysely } from 'kysely';
import { commandContext, withDatabase } from '../context.js';

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .description('remove events, decisions, finished runs and resolved dead letters older than the retention window')
    .option('--older-than <age>', 'an age such as 30d, 12h (default: WALFLOW_RETENTION_DAYS, or the processes\' own window when longer)', age)
    .option('--dry-run', 'count what would go, change nothing')
    .option('--json', 'print JSON')
    .action(async (options: { olderThan?: string; dryRun?: boolean; json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const typed = options.olderThan === undefined ? undefined : parseTime(`-${options.olderThan}`);
      const { olderThan, result } = await withDatabase(context, async (db) => {
        const cutoff = typed ?? (await defaultCutoff(db, context.config.retentionDays));
        const pruned = await prune(db, { olderThan: cutoff, dryRun: options.dryRun ?? false });
        if (!options.dryRun) await recordAudit(db, { actor: context.operator, action: 'prune', arguments: { olderThan: cutoff.toISOString(), ...pruned } });
        return { olderThan: cutoff, result: pruned };
      }, { changesState: true });
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ olderThan: olderThan.toISOString(), dryRun: options.dryRun ?? false, ...result }, null, 2)}\n`);
        return;
      }
      const verb = options.dryRun ? 'would remove' : 'removed';
      process.stdout.write(
        `${verb} what is older than ${olderThan.toISOString()}: ${result.events} events (${result.droppedPartitions.length} whole partitions), ` +
          `${result.decisions} decisions, ${result.runs} finished runs, ${result.deadLetters} resolved dead letters; ` +
          `${result.auditEntries} audit entries older than a year; ${result.guardRows} cooldowns and rate-limit windows over before then\n`,
      );
      if (result.keptForSinks > 0) {
        process.stdout.write(`kept ${result.keptForSinks} older events a JetStream sink has not published yet (delete the cursor of a sink that is gone: walflow.sink_cursors)\n`);
      }
    });
}

/**
 * Without --older-than: this shell's WALFLOW_RETENTION_DAYS, or the window the processes prune by when it is longer
 * (their last daily prune says which): a shell without the deployment's settings would delete what they keep.
 */
async function defaultCutoff(db: Kysely<WalflowDatabase>, retentionDays: number): Promise<Date> {
  const processDays = await processRetentionDays(db);
  if (processDays !== null && processDays > retentionDays) {
    console.error(`walflow: pruning by the processes' retention of ${processDays} days (their last daily prune), longer than WALFLOW_RETENTION_DAYS here (${retentionDays})`);
  }
  return parseTime(`-${Math.max(retentionDays, processDays ?? 0)}d`);
}

const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
/** As long as WALFLOW_RETENTION_DAYS may be. */
const LONGEST_AGE_SECONDS = 36_500 * 86_400;

/**
 * An age as `--older-than` takes it: a whole number above zero and a unit, without the sign of a relative time.
 * An age of zero would prune every finished run and event up to now.
 */
function age(text: string): string {
  const match = /^(\d+)([smhdw])$/.exec(text.trim());
  if (match === null) throw new InvalidArgumentError('expected an age: a whole number and a unit (30d, 12h, 45m, 2w).');
  const seconds = Number(match[1]) * SECONDS_PER_UNIT[match[2]!]!;
  if (seconds === 0) throw new InvalidArgumentError('expected an age above zero (30d, 12h, 45m, 2w).');
  if (seconds > LONGEST_AGE_SECONDS) throw new InvalidArgumentError('expected an age of at most 36500d.');
  return match[0];
}
