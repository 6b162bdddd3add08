import type { WalflowDatabase } from '@walflow/core';
import { DEFAULT_PAGE_BYTES, JetStreamPublisher, pageOf, sinkMessage, type NatsSinkSettings, type PagedEvent, type PageLimits } from '@walflow/nats-sink';
import type { Kysely } from 'kysely';
import type { ReplayOptions, ReplaySummary } from './replay.js';
import { afterInCommitOrder, COMMIT_ORDER, countEvents, eventsInRange, REPLAY_PAGE_EVENTS, type ReplayedRange } from './replay-range.js';

/**
 * Publishes the range to the sink in commit order. Message ids are `<event id>@<commit time>:<replay id>`: JetStream
 * keeps them next to the live messages, and drops them when the same replay runs twice within its duplicate window.
 * Pages are bounded by their text as the live sink's batches are, and payloads published as the log prints them.
 */
export async function replayToSink(options: ReplayOptions, settings: NatsSinkSettings, replayId: string): Promise<ReplaySummary> {
  const summary = { replayId, dryRun: false, events: 0, runsQueued: 0, alreadyDecided: 0, workflows: {}, sink: { stream: settings.stream, published: 0, duplicates: 0 } };
  const total = await countEvents(options.db, options);
  const publisher = await JetStreamPublisher.connect(settings, options.logger);
  try {
    const maxBytes = publisher.maxMessageBytes;
    // Bounded as the live sink's batches are: a page of large payloads would otherwise fill the process.
    for await (const page of sinkPagesOf(options.db, options, { events: REPLAY_PAGE_EVENTS, bytes: DEFAULT_PAGE_BYTES, messageBytes: maxBytes })) {
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

/** The range's events in commit order, in pages bounded by `limits`. */
export async function* sinkPagesOf(db: Kysely<WalflowDatabase>, range: ReplayedRange, limits: PageLimits): AsyncGenerator<PagedEvent[]> {
  let after: PagedEvent | undefined;
  for (;;) {
    let events = eventsInRange(db, range).selectAll();
    if (after !== undefined) events = events.where(afterInCommitOrder(after.committedAt, after.commitLsn, after.txPosition, after.id));
    const { rows } = await pageOf(events.orderBy(COMMIT_ORDER).limit(limits.events), COMMIT_ORDER, limits).execute(db);
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1];
  }
}
