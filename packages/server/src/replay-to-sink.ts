import type { WalflowDatabase } from '@walflow/core';
import { JetStreamPublisher, pageOf, sinkMessage, type NatsSinkSettings, type PagedEvent, type PageLimits } from '@walflow/nats-sink';
import { sql, type Kysely } from 'kysely';
import type { ReplayOptions, ReplaySummary } from './replay.js';
import { countEvents, eventsInRange, type ReplayedRange } from './replay-range.js';

const PAGE_EVENTS = 500;
/** As the live sink's batches: a page of large payloads would otherwise fill the process. */
const PAGE_BYTES = 32 * 1024 * 1024;
const ORDER = sql`committed_at, commit_lsn, tx_position, id`;

/**
 * Publishes the range to the sink in commit order. Message ids are `<event id>@<commit time>:<replay id>`: JetStream keeps
 * them next to the live messages, and drops them when the same replay runs twice within its duplicate window. Pages
 * are bounded by their text as the live sink's batches are, and payloads published as the log prints them.
 */
export async function replayToSink(options: ReplayOptions, settings: NatsSinkSettings, replayId: string): Promise<ReplaySummary> {
  const summary = { replayId, dryRun: false, events: 0, runsQueued: 0, alreadyDecided: 0, workflows: {}, sink: { stream: settings.stream, published: 0, duplicates: 0 } };
  const total = await countEvents(options.db, options);
  const publisher = await JetStreamPublisher.connect(settings, options.logger);
  try {
    const maxBytes = publisher.maxMessageBytes;
    for await (const page of sinkPagesOf(options.db, options, { events: PAGE_EVENTS, bytes: PAGE_BYTES, messageBytes: maxBytes })) {
      options.signal?.throwIfAborted();
      const { stored, duplicates } = await publisher.publishAll(page.map((event) => sinkMessage(event, settings.subject, { replayId, maxBytes })));
      summary.events += page.length;
      summary.sink.published += stored - duplicates;
      summary.sink.duplicates += duplicates;
      options.onProgress?.(summary.events, total);
    }
  } finally {
    await publisher.close();
  }
  return summary;
}

async function* sinkPagesOf(db: Kysely<WalflowDatabase>, range: ReplayedRange, limits: PageLimits): AsyncGenerator<PagedEvent[]> {
  let after: PagedEvent | undefined;
  for (;;) {
    let events = eventsInRange(db, range).selectAll();
    if (after !== undefined) {
      events = events.where(
        sql<boolean>`(committed_at, commit_lsn, tx_position, id) > (${after.committedAt}::timestamptz, ${after.commitLsn}::pg_lsn, ${after.txPosition}, ${after.id}::uuid)`,
      );
    }
    const { rows } = await pageOf(events.orderBy(ORDER).limit(limits.events), ORDER, limits).execute(db);
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1];
  }
}
