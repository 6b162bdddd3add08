import { sqlStateOf } from '@walflow/core';
import { Dispatcher, toEventEnvelope, type EventRow } from '@walflow/executor';
import type { TestDatabaseOptions } from '@walflow/testing/runtime';
import { sql } from 'kysely';
import pino from 'pino';
import { writeBacklog } from '../harness/backlog.js';
import { createBenchDatabase } from '../harness/bench-database.js';
import { distribution, mean } from '../harness/percentiles.js';
import type { FigureResult, Measurement } from '../report/result.js';
import { NOTIFY_ON_ORDER, WALFLOW_BACKLOG_INSERT } from '../workload.js';
import { scaled, type FigureContext } from './figure.js';

/** The consumer's default batch (WALFLOW_BATCH_SIZE). */
const BATCH_EVENTS = 5000;
/** The locale @walflow/testing gives every cluster it creates (initdb --locale=C). */
const CLUSTER_LOCALE = 'C';
/** The default locale of many installations (Debian's, for one); glibc collates its text. */
const COMMON_LOCALE = 'en_US.UTF-8';
/** C and the common locale alternate, so that the machine's drift weighs on both alike. */
const LOCALE_ROUNDS = 2;

/**
 * Figure 7, not one of the issue's: what recording an event costs, without the stream, the walsender or a second
 * process, so that a change to the dispatch's statements or schema shows in numbers this shared machine's noise
 * cannot blur. A backlog of outbox rows (1,000-event transactions) is recorded by `Dispatcher.dispatch` in
 * walflow's own batches, in the bench's process. The WAL written per event is exact; its baseline is the WAL
 * the application's own outbox inserts wrote for the same events. The time per event is the median over the
 * batches, beside the time the server took to write the backlog. A last line repeats it in a database whose
 * locale is a common one instead of C, alternated twice with the C database, when the server knows the locale.
 */
export async function dispatchCostFigure(context: FigureContext): Promise<FigureResult> {
  const started = performance.now();
  const batches = scaled(context, 10, 3);
  const inCRuns: DatabaseRun[] = [];
  const inLocaleRuns: DatabaseRun[] = [];
  let localeKnown = true;
  for (let round = 0; round < LOCALE_ROUNDS; round++) {
    inCRuns.push(await measureDispatch(context, batches, {}));
    if (!localeKnown) continue;
    const other = await measureDispatch(context, batches, { locale: COMMON_LOCALE }).catch((error: unknown) => {
      if (isUnknownLocale(error)) return null;
      throw error;
    });
    if (other === null) localeKnown = false;
    else inLocaleRuns.push(other);
  }
  const inC = combined(inCRuns);
  const inLocale = localeKnown ? combined(inLocaleRuns) : null;
  const measurements: Measurement[] = [
    {
      name: `WAL written to record one event and queue its run (median of ${inC.perBatch.length} batches)`,
      value: inC.walBytesPerEvent,
      unit: 'bytes',
      baseline: { name: 'the outbox insert', value: inC.backlogWalPerEvent, unit: 'bytes' },
      ratio: inC.walBytesPerEvent / inC.backlogWalPerEvent,
    },
    {
      name: `time to record one event and queue its run (median of ${inC.perBatch.length} batches)`,
      value: inC.microsecondsPerEvent,
      unit: 'µs',
      baseline: { name: 'writing the backlog in the server', value: inC.backlogMicrosecondsPerEvent, unit: 'µs' },
      ratio: inC.microsecondsPerEvent / inC.backlogMicrosecondsPerEvent,
    },
  ];
  const details: Record<string, unknown> = { [CLUSTER_LOCALE]: inC };
  if (inLocale === null) context.log(`  the server does not know the locale ${COMMON_LOCALE}: its line is left out`);
  else {
    details[COMMON_LOCALE] = inLocale;
    measurements.push({
      name: `the same in a database whose locale is ${COMMON_LOCALE}`,
      value: inLocale.microsecondsPerEvent,
      unit: 'µs',
      baseline: { name: `the ${CLUSTER_LOCALE} database`, value: inC.microsecondsPerEvent, unit: 'µs' },
      ratio: inLocale.microsecondsPerEvent / inC.microsecondsPerEvent,
    });
  }
  return {
    id: 'dispatch',
    title: '7 dispatch cost (in one process)',
    measurements,
    memory: [],
    notes: [
      `Dispatcher.dispatch in the bench's process, batches of ${BATCH_EVENTS.toLocaleString('en')} outbox rows with one matching workflow each (no stream, no walsender): events, runs, the outbox deletion and the slot's checkpoint, in one transaction per batch`,
      'WAL from pg_current_wal_insert_lsn() around each batch; the backlog: 1,000-event transactions written inside the server with asynchronous commit',
      `the bench's databases have the cluster's locale, ${CLUSTER_LOCALE}; ` +
        (inLocale === null
          ? `the machine lacks ${COMMON_LOCALE}, so the line for a database with it is left out (localedef -i en_US -f UTF-8 en_US.UTF-8 adds it)`
          : `the last line repeats the time in a database with ${COMMON_LOCALE} (glibc), where text index keys compare with strcoll`),
    ],
    details,
    seconds: (performance.now() - started) / 1000,
  };
}

/** One database's backlog, recorded batch by batch. */
interface DatabaseRun {
  perBatch: Array<{ walBytesPerEvent: number; microsecondsPerEvent: number }>;
  backlogWalPerEvent: number;
  backlogMicrosecondsPerEvent: number;
}

interface DispatchCost extends DatabaseRun {
  /** Medians over the batches. */
  walBytesPerEvent: number;
  microsecondsPerEvent: number;
}

/**
 * Several databases' batches as one measurement: medians over all their batches, and the means of the databases'
 * backlogs (one per database, two in all: the nearest-rank median of two would be the smaller).
 */
function combined(runs: DatabaseRun[]): DispatchCost {
  const perBatch = runs.flatMap((run) => run.perBatch);
  return {
    perBatch,
    walBytesPerEvent: distribution(perBatch.map((batch) => batch.walBytesPerEvent)).p50,
    microsecondsPerEvent: distribution(perBatch.map((batch) => batch.microsecondsPerEvent)).p50,
    backlogWalPerEvent: mean(runs.map((run) => run.backlogWalPerEvent)),
    backlogMicrosecondsPerEvent: mean(runs.map((run) => run.backlogMicrosecondsPerEvent)),
  };
}

/** Writes the backlog into a fresh database and records it batch by batch, timing each batch and its WAL. */
async function measureDispatch(context: FigureContext, batches: number, options: TestDatabaseOptions): Promise<DatabaseRun> {
  const database = await createBenchDatabase(context.adminUrl, 'bench_dispatch', [NOTIFY_ON_ORDER], options);
  try {
    const { db } = database;
    const walPosition = async (): Promise<string> => (await sql<{ lsn: string }>`SELECT pg_current_wal_insert_lsn()::text AS lsn`.execute(db)).rows[0]!.lsn;
    const walSince = async (from: string): Promise<number> =>
      Number((await sql<{ bytes: string }>`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${from}::pg_lsn)::bigint AS bytes`.execute(db)).rows[0]!.bytes);

    const beforeBacklog = await walPosition();
    const backlog = await writeBacklog(database.url, WALFLOW_BACKLOG_INSERT, { transactions: batches * (BATCH_EVENTS / 1000), eventsPerTransaction: 1000 });
    const backlogWalPerEvent = (await walSince(beforeBacklog)) / backlog.events;
    // The outbox rows as the events the consumer would decode from them, in batches of walflow's size, each
    // batch one transaction whose end the batch records as the slot's checkpoint, as the consumer's do.
    const { rows } = await sql<EventRow>`
      SELECT id, tenant_id, event_type, aggregate_type, aggregate_id, payload, metadata, to_json(now()) #>> '{}' AS committed_at,
             (${backlog.endLsn}::pg_lsn + ((row_number() OVER (ORDER BY id) - 1) / ${BATCH_EVENTS})::numeric)::text AS commit_lsn,
             ((row_number() OVER (ORDER BY id) - 1) % ${BATCH_EVENTS})::int AS tx_position, xmin::text AS xid
        FROM walflow.outbox ORDER BY id`.execute(db);
    context.log(`  ${backlog.events.toLocaleString('en')} outbox rows (locale ${options.locale ?? CLUSTER_LOCALE}); recording them in batches of ${BATCH_EVENTS.toLocaleString('en')}…`);

    const dispatcher = new Dispatcher({ db, slotName: database.name, logger: pino({ level: 'silent' }) });
    const perBatch: DatabaseRun['perBatch'] = [];
    for (let first = 0; first < rows.length; first += BATCH_EVENTS) {
      const events = rows.slice(first, first + BATCH_EVENTS).map(toEventEnvelope);
      const walBefore = await walPosition();
      const batchStarted = performance.now();
      const last = events.at(-1)!;
      await dispatcher.dispatch({ events, parked: [], checkpoint: { commitLsn: last.commitLsn, endLsn: last.commitLsn, committedAt: last.committedAt } });
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
    return { perBatch, backlogWalPerEvent, backlogMicrosecondsPerEvent: (backlog.seconds * 1_000_000) / backlog.events };
  } finally {
    await database.drop();
  }
}

/**
 * CREATE DATABASE … LOCALE fails with wrong_object_type ("invalid locale name", PostgreSQL 15) or
 * invalid_parameter_value (later versions, for some locale providers) when the operating system lacks the locale.
 */
function isUnknownLocale(error: unknown): boolean {
  const state = sqlStateOf(error);
  return state === '42809' || state === '22023';
}
