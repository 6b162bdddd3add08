import { eventTypeCondition } from '@walflow/core';
import type { Command } from 'commander';
import { sql } from 'kysely';
import { commandContext, withDatabase } from '../context.js';
import { parseTime } from '../parse-time.js';

export function registerEvents(program: Command): void {
  const events = program.command('events').description('the recorded event log');
  events
    .command('list')
    .description('recorded events, newest first')
    .option('--since <time>', 'ISO-8601 or relative (-2h)', '-1h')
    .option('--type <pattern>', 'an event type, or a prefix such as policy.*')
    .option('--tenant <id>', 'only this tenant')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (options: { since: string; type?: string; tenant?: string; limit: string; json?: boolean }) => {
      const since = parseTime(options.since);
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new Error(`--limit must be a whole number from 1 to 10000, got ${options.limit}`);
      const context = commandContext({ logToStdout: false });
      const rows = await withDatabase(context, async (db) => {
        let query = db
          .selectFrom('walflow.events')
          .select(['id', 'event_type', 'tenant_id', 'aggregate_type', 'aggregate_id', sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at'), 'payload'])
          .where('committed_at', '>=', since)
          .orderBy('committed_at', 'desc')
          .limit(limit);
        if (options.tenant !== undefined) query = query.where('tenant_id', '=', options.tenant);
        if (options.type !== undefined) {
          const condition = eventTypeCondition(options.type);
          query = query.where('event_type', condition.operator, condition.value);
        }
        return query.execute();
      });
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
    .option('--type <pattern>', 'an event type, or a prefix such as policy.*')
    .option('--tenant <id>', 'only this tenant')
    .option('--interval <ms>', 'how often to look', '500')
    .option('--json', 'one JSON object per line')
    .action(async (options: { type?: string; tenant?: string; interval: string; json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const intervalMs = Math.max(50, Number(options.interval) || 500);
      let stopped = false;
      const stop = (): void => {
        stopped = true;
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await withDatabase(context, async (db) => {
        // Follows received_at (when walflow recorded it), so a late-committed backlog is not skipped.
        let since = new Date();
        const seen = new Set<string>();
        while (!stopped) {
          let query = db
            .selectFrom('walflow.events')
            .select(['id', 'event_type', 'tenant_id', 'aggregate_type', 'aggregate_id', 'received_at', sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at'), 'payload'])
            .where('received_at', '>=', since)
            .orderBy('received_at')
            .limit(1000);
          if (options.tenant !== undefined) query = query.where('tenant_id', '=', options.tenant);
          if (options.type !== undefined) {
            const condition = eventTypeCondition(options.type);
            query = query.where('event_type', condition.operator, condition.value);
          }
          for (const row of await query.execute()) {
            if (seen.has(row.id)) continue;
            seen.add(row.id);
            since = row.received_at;
            const { received_at: _receivedAt, ...event } = row;
            process.stdout.write(options.json ? `${JSON.stringify(event)}\n` : `${event.committed_at}  ${event.id}  ${event.tenant_id}  ${event.event_type}\n`);
          }
          if (seen.size > 10_000) seen.clear();
          await new Promise((resolve) => setTimeout(resolve, intervalMs));
        }
      });
    });
}

