import { Dispatcher, toEventEnvelope, type EventRow } from '@walflow/executor';
import { sql } from 'kysely';
import pino from 'pino';
import { writeBacklog } from '../harness/backlog.js';
import { createBenchDatabase } from '../harness/bench-database.js';
import { distribution } from '../harness/percentiles.js';
import type { FigureResult } from '../report/result.js';
import { NOTIFY_ON_ORDER, WALFLOW_BACKLOG_INSERT } from '../workload.js';
import { scaled, type FigureContext } from './figure.js';

/** The consumer's default batch (WALFLOW_BATCH_SIZE). */
const BATCH_EVENTS = 5000;

/**
 * Figure 7, not one of the issue's: what recording an event costs, without the stream, the walsender or a second
 * process, so that a change to the dispatch's statements or schema shows in numbers this shared machine's noise
 * cannot blur. A backlog of outbox rows (1,000-event transactions) is recorded by `Dispatcher.dispatch` in
 * walflow's own batches, in the bench's process. The WAL written per event is exact; its baseline is the WAL
 * the application's own outbox inserts wrote for the same events. The time per event is the median over the
 * batches, beside the time the server took to write the backlog.
 */
export async function dispatchCostFigure(context: FigureContext): Promise<FigureResult> {
  const started = performance.now();
  const batches = scaled(context, 10, 3);
  const database = await createBenchDatabase(context.adminUrl, 'bench_dispatch', [NOTIFY_ON_ORDER]);
  try {
    const { db } = database;
    const walPosition = async (): Promise<string> => (await sql<{ lsn: string }>`SELECT pg_current_wal_insert_lsn()::text AS lsn`.execute(db)).rows[0]!.lsn;
    const walSince = async (from: string): Promise<number> =>
      Number((await sql<{ bytes: string }>`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${from}::pg_lsn)::bigint AS bytes`.execute(db)).rows[0]!.bytes);

    const beforeBacklog = await walPosition();
    const backlog = await writeBacklog(database.url, WALFLOW_BACKLOG_INSERT, { transactions: batches * (BATCH_EVENTS / 1000), eventsPerTransaction: 1000 });
    const backlogWalPerEvent = (await walSince(beforeBacklog)) / backlog.events;
    // The outbox rows as the events the consumer would decode from them, in batches of walflow's size.
    const { rows } = await sql<EventRow>`
      SELECT id, tenant_id, event_type, aggregate_type, aggregate_id, payload, metadata, to_json(now()) #>> '{}' AS committed_at,
             ${backlog.endLsn}::text AS commit_lsn, ((row_number() OVER (ORDER BY id) - 1) % ${BATCH_EVENTS})::int AS tx_position, xmin::text AS xid
        FROM walflow.outbox ORDER BY id`.execute(db);
    context.log(`  ${backlog.events.toLocaleString('en')} outbox rows; recording them in batches of ${BATCH_EVENTS.toLocaleString('en')}…`);

    const dispatcher = new Dispatcher({ db, slotName: database.name, logger: pino({ level: 'silent' }) });
    const perBatch: Array<{ walBytesPerEvent: number; microsecondsPerEvent: number }> = [];
    for (let first = 0; first < rows.length; first += BATCH_EVENTS) {
      const events = rows.slice(first, first + BATCH_EVENTS).map(toEventEnvelope);
      const walBefore = await walPosition();
      const batchStarted = performance.now();
      await dispatcher.dispatch({ events, parked: [], checkpoint: null });
      const microseconds = (performance.now() - batchStarted) * 1000;
      perBatch.push({ walBytesPerEvent: (await walSince(walBefore)) / events.length, microsecondsPerEvent: microseconds / events.length });
    }
    const counts = await sql<{ events: string; runs: string; outbox: string }>`
      SELECT (SELECT count(*) FROM walflow.events) AS events, (SELECT count(*) FROM walflow.workflow_runs) AS runs,
             (SELECT count(*) FROM walflow.outbox) AS outbox`.execute(db);
    const { events, runs, outbox } = counts.rows[0]!;
    if (Number(events) !== backlog.events || Number(runs) !== backlog.events || Number(outbox) !== 0) {
      throw new Error(`dispatch cost: recorded ${events} events, queued ${runs} runs and left ${outbox} outbox rows for ${backlog.events} events`);
    }

    const walPerEvent = distribution(perBatch.map((batch) => batch.walBytesPerEvent)).p50;
    const microsecondsPerEvent = distribution(perBatch.map((batch) => batch.microsecondsPerEvent)).p50;
    const backlogMicrosecondsPerEvent = (backlog.seconds * 1_000_000) / backlog.events;
    return {
      id: 'dispatch',
      title: '7 dispatch cost (in one process)',
      measurements: [
        {
          name: `WAL written to record one event and queue its run (median of ${perBatch.length} batches)`,
          value: walPerEvent,
          unit: 'bytes',
          baseline: { name: 'the outbox insert', value: backlogWalPerEvent, unit: 'bytes' },
          ratio: walPerEvent / backlogWalPerEvent,
        },
        {
          name: `time to record one event and queue its run (median of ${perBatch.length} batches)`,
          value: microsecondsPerEvent,
          unit: 'µs',
          baseline: { name: 'writing the backlog in the server', value: backlogMicrosecondsPerEvent, unit: 'µs' },
          ratio: microsecondsPerEvent / backlogMicrosecondsPerEvent,
        },
      ],
      memory: [],
      notes: [
        `Dispatcher.dispatch in the bench's process, batches of ${BATCH_EVENTS.toLocaleString('en')} outbox rows with one matching workflow each (no stream, no walsender): events, runs, the outbox deletion, in one transaction per batch`,
        'WAL from pg_current_wal_insert_lsn() around each batch; the backlog: 1,000-event transactions written inside the server with asynchronous commit',
      ],
      details: { perBatch, backlogWalPerEvent, backlogMicrosecondsPerEvent },
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await database.drop();
  }
}
