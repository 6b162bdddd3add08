import { eventsRecordedAfter, followEvents, followSafePoint, followStart, listEvents, parseTime } from '@walflow/server';
import type { Command } from 'commander';
import { nonEmptyText, timeText } from '../option-text.js';
import { commandContext, withDatabase } from '../context.js';
import { wholeNumber } from '../whole-number.js';

export function registerEvents(program: Command): void {
  const events = program.command('events').description('the recorded event log');
  events
    .command('list')
    .description('recorded events, newest first')
    .option('--since <time>', 'ISO-8601 or relative (-2h)', timeText, '-1h')
    .option('--type <pattern>', 'an event type, or a prefix such as policy.*', nonEmptyText)
    .option('--tenant <id>', 'only this tenant', nonEmptyText)
    .option('--limit <n>', 'at most this many', wholeNumber(1, 10_000), 50)
    .option('--json', 'print JSON')
    .action(async (options: { since: string; type?: string; tenant?: string; limit: number; json?: boolean }) => {
      const since = parseTime(options.since);
      const limit = options.limit;
      const context = commandContext({ logToStdout: false });
      const rows = await withDatabase(context, (db) => listEvents(db, { since, type: options.type, tenantId: options.tenant, limit }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      for (const row of rows) {
        const aggregate = row.aggregate_id === null ? '' : `  ${row.aggregate_type ?? ''}/${row.aggregate_id}`;
        process.stdout.write(`${row.committed_at}  ${row.id}  ${row.tenant_id}  ${row.event_type}${aggregate}\n`);
      }
      if (rows.length === 0) process.stdout.write(`no events since ${since.toISOString()}\n`);
    });

  events
    .command('tail')
    .description('follow new events as they are recorded (Ctrl-C to stop)')
    .option('--type <pattern>', 'an event type, or a prefix such as policy.*', nonEmptyText)
    .option('--tenant <id>', 'only this tenant', nonEmptyText)
    .option('--interval <ms>', 'how often to look', wholeNumber(50, 3_600_000), 500)
    .option('--json', 'one JSON object per line')
    .action(async (options: { type?: string; tenant?: string; interval: number; json?: boolean }) => {
      // From the moment the command starts, before it connects: nothing recorded meanwhile is missed.
      const startedAt = new Date();
      const context = commandContext({ logToStdout: false });
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      const filter = { type: options.type, tenantId: options.tenant };
      // On stderr, so --json output stays data; scripts (and the tests) wait for it before writing.
      process.stderr.write('following new events (Ctrl-C to stop)\n');
      await withDatabase(context, async (db) =>
        // Follows received_at (when walflow recorded it), so a late-committed backlog is not skipped.
        followEvents({
          read: (cursor) => eventsRecordedAfter(db, cursor, filter, 1000),
          from: await followStart(db, startedAt),
          safePoint: () => followSafePoint(db),
          intervalMs: options.interval,
          signal: stop.signal,
          onEvents: (recorded) => {
            for (const { received_at: _receivedAt, ...event } of recorded) {
              process.stdout.write(options.json ? `${JSON.stringify(event)}\n` : `${event.committed_at}  ${event.id}  ${event.tenant_id}  ${event.event_type}\n`);
            }
          },
        }),
      );
    });
}
