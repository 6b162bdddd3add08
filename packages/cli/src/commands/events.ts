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
          query = options.type.endsWith('*')
            ? query.where('event_type', 'like', `${options.type.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`)
            : query.where('event_type', '=', options.type);
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
}
