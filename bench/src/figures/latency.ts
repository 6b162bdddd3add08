import { createBenchDatabase } from '../harness/bench-database.js';
import { probeHealth, type HealthLatency } from '../harness/health-probe.js';
import { runPacedLoad, type PacedLoadResult } from '../harness/paced-load.js';
import { censoredDistribution, type Distribution } from '../harness/percentiles.js';
import { sampleProcessCpu, type ProcessCpu } from '../harness/process-cpu.js';
import { spawnWalflow } from '../harness/walflow-child.js';
import { profilePhase } from '../harness/walflow-profile.js';
import { finishedLatencies, OUTBOX_EMPTY, recordedLatencies, RUNS_DONE, waitUntil, walflowCounts } from '../harness/walflow-measures.js';
import { healthMeasurements } from '../report/health-measurements.js';
import { target, type FigureResult, type Measurement, type Target } from '../report/result.js';
import { NOTIFY_ON_ORDER, orderEvent } from '../workload.js';
import { deadlineAfter, type FigureContext } from './figure.js';

export const LATENCY_RATES = [1000, 3000] as const;
/** Enough connections that commits waiting for their fsync never hold the rate back. */
const LOAD_CONNECTIONS = 16;
const RECORDED_P99_TARGET_MS = 50;
const FINISHED_P99_TARGET_MS = 150;

/** The load's statement: one autocommitted walflow.emit per event, so each event is a transaction of its own. */
export function emitStatement(type: string): (n: number) => { text: string; values: unknown[] } {
  return (n) => {
    const event = orderEvent(n, type);
    return { text: 'SELECT walflow.emit($1, $2::jsonb, $3, $4)', values: [event.type, JSON.stringify(event.payload), event.aggregateType, event.aggregateId] };
  };
}

/** p50 / p95 / p99 / max, for the table. */
export function spread(latency: Distribution): string {
  // Tenths below a second, so that a value beside a target of 50 or 150 ms never rounds onto it.
  const format = (ms: number): string => (ms === Infinity ? '∞' : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0));
  return `${format(latency.p50)} / ${format(latency.p95)} / ${format(latency.p99)} / ${format(latency.max)}`;
}

/** How much of its asked rate a load must reach for its latencies to be held to the targets. */
export const ACHIEVED_RATE_SHARE = 0.98;

/** The line of commit→recorded at 1,000 events/s, which figure 5 puts beside the peers. */
export const WALFLOW_RECORDED_P99_KEY = 'latency.1000.recorded';
/** The same with no workflow matching, no run queued or executed: figure 5's like-for-like line. */
export const WALFLOW_RECORD_ONLY_P99_KEY = 'latency.1000.recordOnly';
/** The rate of the like-for-like line: the peers' load (figure 5). */
const RECORD_ONLY_RATE = 1000;

/**
 * Figure 3: a steady load of single-event transactions while walflow (default settings) runs, each rate in a fresh
 * database with a walflow of its own; for every event, commit to recorded (its WAL commit time to the commit of
 * the dispatch batch that recorded it) and commit to run finished (to the commit that marked its
 * create_notification run succeeded). Events not recorded, or runs not finished, when the bench stops waiting
 * count as infinitely late.
 */
export async function latencyFigure(context: FigureContext): Promise<FigureResult> {
  const started = performance.now();
  const seconds = Math.max(2, Math.round(20 * context.scale));
  const measurements: Measurement[] = [];
  const memory: FigureResult['memory'] = [];
  const details: Record<string, unknown> = { seconds };
  for (const rate of LATENCY_RATES) {
    const outcome = await measureRate(context, rate, seconds);
    const { load, recorded, finished } = outcome;
    context.log(`  ${rate}/s (achieved ${load.rate.toFixed(0)}): recorded ${spread(recorded)} ms, finished ${spread(finished)} ms`);
    // A load that fell short of its rate measured an easier case: its target is not met, whatever the latency.
    const atRate = load.rate >= rate * ACHIEVED_RATE_SHARE;
    const targets = (limit: number, latency: Distribution): Target[] | undefined =>
      rate === 1000
        ? [target(atRate ? `p99 < ${limit} ms` : `p99 < ${limit} ms at ${rate}/s (the load reached ${load.rate.toFixed(0)}/s)`, atRate && latency.p99 < limit)]
        : undefined;
    const unfinished = outcome.finishedCount < load.events ? ` (${outcome.finishedCount.toLocaleString('en')} of ${load.events.toLocaleString('en')} within ${outcome.waitedSeconds} s)` : '';
    measurements.push(
      { name: `load at ${rate}/s: achieved`, value: load.rate, unit: 'events/s' },
      { key: `latency.${rate}.recorded`, name: `${rate}/s commit→recorded p50/p95/p99/max`, value: recorded.p99, display: spread(recorded), unit: 'ms', targets: targets(RECORDED_P99_TARGET_MS, recorded) },
      { key: `latency.${rate}.finished`, name: `${rate}/s commit→run finished p50/p95/p99/max${unfinished}`, value: finished.p99, display: spread(finished), unit: 'ms', targets: targets(FINISHED_P99_TARGET_MS, finished) },
      ...healthMeasurements(`${rate}/s`, outcome.health),
    );
    memory.push({ label: `latency at ${rate}/s`, ...outcome.memory });
    details[`${rate}`] = outcome;
  }
  const recordOnly = await measureRate(context, RECORD_ONLY_RATE, seconds, { runs: false });
  context.log(`  ${RECORD_ONLY_RATE}/s, no workflow matching (achieved ${recordOnly.load.rate.toFixed(0)}): recorded ${spread(recordOnly.recorded)} ms`);
  // Figure 5 compares this line with the peers: a load short of its rate says so in its name.
  const shortOf = recordOnly.load.rate >= RECORD_ONLY_RATE * ACHIEVED_RATE_SHARE ? '' : ` (the load reached ${recordOnly.load.rate.toFixed(0)}/s)`;
  measurements.push({
    key: WALFLOW_RECORD_ONLY_P99_KEY,
    name: `${RECORD_ONLY_RATE}/s, no workflow matching: commit→recorded p50/p95/p99/max${shortOf}`,
    value: recordOnly.recorded.p99,
    display: spread(recordOnly.recorded),
    unit: 'ms',
  });
  memory.push({ label: `latency at ${RECORD_ONLY_RATE}/s, no workflow matching`, ...recordOnly.memory });
  details[`${RECORD_ONLY_RATE}.recordOnly`] = recordOnly;
  return {
    id: 'latency',
    title: '3 latency under steady load',
    measurements,
    memory,
    notes: [
      `${seconds} s per rate, ${LOAD_CONNECTIONS} connections, one autocommitted SELECT walflow.emit(…) per event; walflow start with default settings (4 workers)`,
      'recorded: pg_xact_commit_timestamp(xmin) of the walflow.events row minus its committed_at (the WAL commit time); finished: the same for the succeeded walflow.workflow_runs row minus event_committed_at',
      'the run is one create_notification action: one row written in the run’s own transaction, nothing outside PostgreSQL',
      'GET /health and /healthz go to walflow, one every 20 ms, under each load (not to the peers of figure 5)',
      `no workflow matching, for reference (no target): the same load at ${RECORD_ONLY_RATE}/s with no workflow applied, so walflow records each event and neither queues nor executes a run, as the peers of figure 5 do`,
    ],
    details,
    seconds: (performance.now() - started) / 1000,
  };
}

/** With `runs: false`, no workflow is applied: events are recorded and no run is queued, as the peers do. */
async function measureRate(context: FigureContext, rate: number, seconds: number, { runs } = { runs: true }) {
  const type = `bench.load_${rate}`;
  const database = await createBenchDatabase(context.adminUrl, 'bench_latency', runs ? [NOTIFY_ON_ORDER] : []);
  try {
    const profiling = await profilePhase(context.profileDir, `latency ${rate}${runs ? '' : ', no workflow matching'}`, database.url);
    const walflow = spawnWalflow({ databaseUrl: database.url, slot: database.name, cpuProfileDir: profiling?.dir });
    let stopped = false;
    try {
      const probe = probeHealth(await walflow.started);
      let load: PacedLoadResult;
      let processes: ProcessCpu | undefined;
      let health: HealthLatency;
      let cap: ReturnType<typeof deadlineAfter>;
      try {
        await walflow.streaming;
        // With --profile, where the machine's CPU goes while the load runs: at these rates it is what latency waits for.
        const sampler = profiling === undefined ? undefined : await sampleProcessCpu(database.url, walflow.pid);
        try {
          load = await runPacedLoad({ url: database.url, ratePerSecond: rate, seconds, connections: LOAD_CONNECTIONS, statement: emitStatement(type) });
        } finally {
          processes = await sampler?.stop();
        }
        // From the load's end: the wait for the backlog it left.
        cap = deadlineAfter(context, 120, 30);
        if ((await waitUntil(database.url, OUTBOX_EMPTY, cap.deadline)) && runs) await waitUntil(database.url, RUNS_DONE, cap.deadline);
      } finally {
        health = await probe.stop();
      }
      const { events: recordedCount, succeeded: finishedCount } = await walflowCounts(database.url, type);
      const memory = await walflow.memory();
      await walflow.stop();
      stopped = true;
      const profile = profiling === undefined ? undefined : { ...(await profiling.collect()), processes };
      return {
        load,
        recordedCount,
        finishedCount,
        waitedSeconds: cap.seconds,
        recorded: censoredDistribution(await recordedLatencies(database.url, type), load.events),
        finished: censoredDistribution(await finishedLatencies(database.url, type), load.events),
        health,
        memory,
        profile,
      };
    } finally {
      if (!stopped) await walflow.stop();
    }
  } finally {
    await database.drop();
  }
}
