import { readFile } from 'node:fs/promises';
import { isWalflowError, WalflowError } from '@walflow/core';
import { checkReplayRequest, exactRange, parseTime, recordAudit, replayRange } from '@walflow/server';
import type { Command } from 'commander';
import { nonEmptyText, timeText } from '../option-text.js';
import { commandContext, withDatabase } from '../context.js';
import { errorMessage } from '../error-message.js';

interface ReplayFlags {
  from: string;
  to: string;
  type?: string;
  workflow?: string;
  workflowFile?: string;
  tenant?: string;
  replayId?: string;
  again?: boolean;
  dryRun?: boolean;
  ignoreGuards?: boolean;
  toSink?: boolean;
  json?: boolean;
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('run the recorded events committed in [from, to) through the current workflows again')
    .requiredOption('--from <time>', 'ISO-8601 or relative (-2h); included', timeText)
    .requiredOption('--to <time>', 'ISO-8601 or relative; excluded', timeText)
    .option('--type <pattern>', 'an event type, or a prefix such as policy.*', nonEmptyText)
    .option('--workflow <name|id>', 'only this workflow', nonEmptyText)
    .option('--workflow-file <file>', 'with --dry-run: backtest a workflow that is not applied yet', nonEmptyText)
    .option('--tenant <id>', 'only this tenant', nonEmptyText)
    .option('--replay-id <id>', 'name the replay (default: derived from the range and filters)', nonEmptyText)
    .option('--again', 'a fresh replay id: run the same range once more')
    .option('--dry-run', 'decide and count, create nothing')
    .option('--ignore-guards', 'fire every match: no cooldown, no rate limit')
    .option('--to-sink', 're-publish the events to the JetStream sink (WALFLOW_NATS_URL) with message ids that carry the replay id; runs no workflow')
    .option('--json', 'print the summary as JSON')
    .action(async (flags: ReplayFlags) => {
      const context = commandContext({ logToStdout: false });
      // One instant for both bounds and for the retention check.
      const now = new Date();
      const [from, to] = [parseTime(flags.from, now), parseTime(flags.to, now)];
      const { retentionDays } = context.config;
      const rangeAsTyped = { from: flags.from, to: flags.to };
      // What the range came to, to the microsecond: audited, and given to go on after a failure, since relative
      // bounds typed again later come to a later range under the same replay id.
      const range = exactRange({ from, to, rangeAsTyped });
      checkReplayRequest({ ...flags, from, to, now, rangeAsTyped, retentionDays, withWorkflowFile: flags.workflowFile !== undefined, toSink: flags.toSink ?? false });
      if (flags.toSink && context.config.natsSink === undefined) throw new WalflowError('config_invalid', '--to-sink needs the sink configured: set WALFLOW_NATS_URL');
      const workflowDefinition = flags.workflowFile === undefined ? undefined : await readWorkflowFile(flags.workflowFile);
      const progress = progressReporter();
      // Ctrl-C or SIGTERM stops the replay before its next page, so that it ends as a failure does: audited, the
      // pages committed kept. A second signal ends the process at once.
      const stop = new AbortController();
      const interrupt = (signal: NodeJS.Signals): void =>
        stop.abort(
          new WalflowError(
            'interrupted',
            flags.dryRun ? `dry run interrupted by ${signal}: nothing was created` : `replay interrupted by ${signal}: the pages replayed so far stay`,
          ),
        );
      process.once('SIGINT', interrupt);
      process.once('SIGTERM', interrupt);
      const summary = await withDatabase(context, async (db) => {
        let started: string | undefined;
        const replaying = replayRange({
          db,
          logger: context.logger,
          slotName: context.config.slotName,
          from,
          to,
          now,
          rangeAsTyped,
          type: flags.type,
          tenantId: flags.tenant,
          workflow: flags.workflow,
          replayId: flags.replayId,
          again: flags.again,
          dryRun: flags.dryRun,
          ignoreGuards: flags.ignoreGuards,
          workflowDefinition,
          policy: { updateFields: context.config.updateFields },
          maxDepth: context.config.maxDepth,
          retentionDays,
          onProgress: progress,
          onStart: (replayId) => (started = replayId),
          signal: stop.signal,
          toSink: flags.toSink ? context.config.natsSink : undefined,
        });
        let result;
        try {
          result = await replaying;
        } catch (error) {
          // The pages committed before the failure stay: the audit log says the replay ran, under which id (a rerun
          // under it goes on), and how it ended. One refused before it started ran nothing.
          if (!flags.dryRun && started !== undefined) {
            await recordAudit(db, { actor: context.operator, action: 'replay', target: started, arguments: { ...flags, range, failed: errorMessage(error) } }).catch(() => undefined);
            throw new WalflowError(
              isWalflowError(error) ? error.code : 'dispatch_failed',
              `${errorMessage(error)}; to go on, run it again with --from ${range.from} --to ${range.to} --replay-id ${started} and its other options but --again`,
              { cause: error },
            );
          }
          throw error;
        }
        if (!result.dryRun) await recordAudit(db, { actor: context.operator, action: 'replay', target: result.replayId, arguments: { ...flags, range } });
        return result;
      }, { changesState: true }).finally(() => {
        progress.done();
        process.off('SIGINT', interrupt);
        process.off('SIGTERM', interrupt);
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      if (summary.sink !== undefined) {
        const { stream, published, duplicates } = summary.sink;
        process.stdout.write(`replay ${summary.replayId}: ${summary.events} events, ${published} published to stream ${stream}${duplicates > 0 ? `, ${duplicates} already there` : ''}\n`);
        return;
      }
      const lines = [
        `${summary.dryRun ? 'dry run' : 'replay'} ${summary.replayId}: ${summary.events} events, ${summary.dryRun ? 'nothing created' : `${summary.runsQueued} runs queued`}` +
          // Why a rerun does nothing: what it would decide was decided by its earlier runs.
          (summary.alreadyDecided === 0 ? '' : `; ${summary.alreadyDecided} pairs already decided by this replay (--again for a fresh one)`),
        ...Object.entries(summary.workflows).map(
          ([workflow, counts]) => `  ${workflow}: ${Object.entries(counts).map(([outcome, n]) => `${outcome} ${n}`).join(', ')}`,
        ),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

async function readWorkflowFile(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch (error) {
    throw WalflowError.from(error, 'workflow_invalid', `cannot read ${file}`);
  }
}

/** A progress bar with rate and ETA on a terminal (rewritten in place); a plain line per 10% otherwise. */
function progressReporter(): ((done: number, total: number) => void) & { done(): void } {
  const started = Date.now();
  let drawn = false;
  let lastTenth = 0;
  const report = (done: number, total: number): void => {
    const seconds = (Date.now() - started) / 1000;
    const rate = done / Math.max(seconds, 0.001);
    // The total was counted before the first page: events recorded in the range since then make `done` pass it.
    const eta = rate > 0 ? Math.max(0, Math.round((total - done) / rate)) : 0;
    if (!process.stderr.isTTY) {
      const tenth = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (tenth > lastTenth) process.stderr.write(`replayed ${done}/${total} events, ${Math.round(rate)}/s, ETA ${eta}s\n`);
      lastTenth = tenth;
      return;
    }
    process.stderr.write(`\r${progressBar(done, total)} ${done}/${total} events  ${Math.round(rate)}/s  ETA ${eta}s `);
    drawn = true;
  };
  return Object.assign(report, {
    done: () => {
      if (drawn) process.stderr.write('\n');
    },
  });
}

/** `[####......]`, full once `done` reaches `total` or passes it (events recorded in the range after it was counted). */
export function progressBar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
