import type { WorkflowDefinitionInput } from '@walflow/executor';
import { writeBacklog, type BacklogShape } from '../harness/backlog.js';
import { createBenchDatabase } from '../harness/bench-database.js';
import { probeHealth, type HealthLatency } from '../harness/health-probe.js';
import { sampleProcessCpu, type ProcessCpu } from '../harness/process-cpu.js';
import { createRecvlogicalSlot, streamWithRecvlogical } from '../harness/pg-recvlogical.js';
import { spawnWalflow } from '../harness/walflow-child.js';
import { profilePhase } from '../harness/walflow-profile.js';
import { dispatchWindow, OUTBOX_EMPTY, recordingWindow, waitUntil, walflowCounts } from '../harness/walflow-measures.js';
import { healthMeasurements } from '../report/health-measurements.js';
import { target, type FigureResult, type Measurement } from '../report/result.js';
import { NOTIFY_ON_ORDER, WALFLOW_BACKLOG_INSERT } from '../workload.js';
import { deadlineAfter, scaled, type FigureContext } from './figure.js';

const DRAIN_TARGET_EVENTS_PER_SECOND = 10_000;
const DRAIN_TARGET_RATIO = 0.35;
/** The line of the batched backlog (transactions of 100), which figure 5 puts beside the peers. */
export const WALFLOW_DRAIN_KEY = 'drain.batched';
/** The same backlog with no workflow matching: walflow records the events and queues nothing, as the peers do. */
export const WALFLOW_RECORD_ONLY_DRAIN_KEY = 'drain.batched.recordOnly';

/**
 * Figure 2: a backlog of committed events, one matching workflow each. walflow starts (workers off: this is
 * about recording and queueing) and the clock runs from its spawn to the commit of the dispatch batch that
 * queued the last run. The baseline is pg_recvlogical with walflow's wal2json options streaming the same
 * transactions from a second slot, created before the backlog, into /dev/null. A last line, for reference, drains
 * the batched backlog with no workflow matching: the work the peers of figure 5 do (record each event).
 */
export async function drainFigure(context: FigureContext): Promise<FigureResult> {
  const started = performance.now();
  const transactions = scaled(context, 1000);
  const events = transactions * 100;
  const shapes: Array<{ label: string; shape: BacklogShape }> = [
    { label: `${transactions.toLocaleString('en')} tx × 100`, shape: { transactions, eventsPerTransaction: 100 } },
    { label: `${events.toLocaleString('en')} tx × 1`, shape: { transactions: events, eventsPerTransaction: 1 } },
  ];
  const measurements: Measurement[] = [];
  const memory: FigureResult['memory'] = [];
  const details: Record<string, unknown> = {};
  for (const { label, shape } of shapes) {
    const batched = shape.eventsPerTransaction > 1;
    context.log(`  backlog of ${label}`);
    const run = await drainOnce(context, label, shape, [NOTIFY_ON_ORDER]);
    const ratio = run.walflow.eventsPerSecond / run.recvlogicalEventsPerSecond;
    const complete = run.capSeconds === undefined;
    measurements.push(
      {
        ...(batched ? { key: WALFLOW_DRAIN_KEY } : {}),
        name: `drain ${label}: recorded + runs queued${capped(run)}`,
        value: run.walflow.eventsPerSecond,
        unit: 'events/s',
        baseline: { name: 'pg_recvlogical', value: run.recvlogicalEventsPerSecond, unit: 'events/s' },
        ratio,
        // A drain stopped by its time cap is not met, whatever the rate of what it did before.
        targets: [
          target(`≥ ${DRAIN_TARGET_EVENTS_PER_SECOND.toLocaleString('en')} events/s`, complete && run.walflow.eventsPerSecond >= DRAIN_TARGET_EVENTS_PER_SECOND),
          target(`ratio ≥ ${DRAIN_TARGET_RATIO}`, complete && ratio >= DRAIN_TARGET_RATIO),
        ],
      },
      { name: `drain ${label}: first to last dispatch commit (the first commit's events left out)`, value: run.walflow.steadyEventsPerSecond, unit: 'events/s' },
      { name: `drain ${label}: spawn to 'replication streaming' logged`, value: run.walflow.streamingSeconds * 1000, unit: 'ms' },
      { name: `drain ${label}: spawn to first dispatch commit`, value: run.walflow.startupSeconds * 1000, unit: 'ms' },
      ...healthMeasurements(`drain ${label}`, run.health),
    );
    memory.push({ label: `drain ${label}`, ...run.memory });
    details[label] = run;
  }
  const recordOnlyLabel = `${transactions.toLocaleString('en')} tx × 100, no workflow matching`;
  context.log(`  backlog of ${recordOnlyLabel}`);
  const recordOnly = await drainOnce(context, recordOnlyLabel, shapes[0]!.shape, []);
  measurements.push({
    key: WALFLOW_RECORD_ONLY_DRAIN_KEY,
    name: `drain ${recordOnlyLabel}: recorded${capped(recordOnly)}`,
    value: recordOnly.walflow.eventsPerSecond,
    unit: 'events/s',
    baseline: { name: 'pg_recvlogical', value: recordOnly.recvlogicalEventsPerSecond, unit: 'events/s' },
    ratio: recordOnly.walflow.eventsPerSecond / recordOnly.recvlogicalEventsPerSecond,
  });
  memory.push({ label: `drain ${recordOnlyLabel}`, ...recordOnly.memory });
  details[recordOnlyLabel] = recordOnly;
  return {
    id: 'drain',
    title: '2 drain throughput',
    measurements,
    memory,
    notes: [
      'clock: from spawning `walflow start` to the commit of the batch that queued the last run (commit timestamps); workers off (WALFLOW_WORKER_CONCURRENCY=0), everything else default',
      'no workflow matching, for reference (no target): the same events recorded and no run queued, the work of the peers in figure 5; its clock ends at the commit of the batch that recorded the last event',
      'pg_recvlogical: same wal2json options, --endpos at the end of the backlog, -f /dev/null, timed from spawn to the moment it says (-v) it reached the end position, as walflow is timed to its last commit and not to its exit; it runs first, on a slot created before the backlog',
      'backlogs are written inside the server with asynchronous commit (set-up only: the WAL is the same), then flushed before anything reads them',
      'GET /health and /healthz go to walflow, one every 20 ms, through each of its drains (not to pg_recvlogical): a small load that only walflow carries',
    ],
    details,
    seconds: (performance.now() - started) / 1000,
  };
}

function capped(run: { capSeconds: number | undefined; done: number }): string {
  return run.capSeconds === undefined ? '' : ` (stopped after ${run.capSeconds} s: ${run.done.toLocaleString('en')} done)`;
}

/** Drains one backlog; with no workflows, nothing matches and the work done is each event recorded. */
async function drainOnce(context: FigureContext, label: string, shape: BacklogShape, workflows: readonly WorkflowDefinitionInput[]) {
  const queuesRuns = workflows.length > 0;
  const database = await createBenchDatabase(context.adminUrl, 'bench_drain', workflows);
  try {
    const recvSlot = `${database.name}_recv`;
    await createRecvlogicalSlot(database.url, recvSlot);
    const backlog = await writeBacklog(database.url, WALFLOW_BACKLOG_INSERT, shape);
    context.log(`    written in ${backlog.seconds.toFixed(1)} s; pg_recvlogical…`);
    const recv = await streamWithRecvlogical(database.url, recvSlot, backlog.endLsn);
    context.log(`    pg_recvlogical: ${recv.endReachedSeconds.toFixed(2)} s to the end position, ${recv.exitSeconds.toFixed(2)} s to its exit; walflow…`);

    const profiling = await profilePhase(context.profileDir, label, database.url);
    const walflow = spawnWalflow({ databaseUrl: database.url, slot: database.name, env: { WALFLOW_WORKER_CONCURRENCY: '0' }, cpuProfileDir: profiling?.dir });
    let stopped = false;
    try {
      const cap = deadlineAfter(context, 600, 120);
      const probe = probeHealth(await walflow.started);
      let streamingAt: number;
      let drained: boolean;
      let processes: ProcessCpu | undefined;
      let health: HealthLatency;
      try {
        streamingAt = await walflow.streaming;
        // With --profile, the CPU each process spends on the drain: what a faster drain has to take from.
        const sampler = profiling === undefined ? undefined : await sampleProcessCpu(database.url, walflow.pid);
        try {
          drained = await waitUntil(database.url, OUTBOX_EMPTY, cap.deadline);
        } finally {
          processes = await sampler?.stop();
        }
      } finally {
        health = await probe.stop();
      }
      const window = queuesRuns ? await dispatchWindow(database.url) : await recordingWindow(database.url);
      const counts = await walflowCounts(database.url);
      if (drained && (counts.events !== backlog.events || counts.runs !== (queuesRuns ? backlog.events : 0))) {
        throw new Error(`drain ${label}: walflow recorded ${counts.events} events and queued ${counts.runs} runs for ${backlog.events} events`);
      }
      // What the clock counts: runs queued, or with no workflow matching, events recorded.
      const done = queuesRuns ? counts.runs : counts.events;
      const memory = await walflow.memory();
      await walflow.stop();
      stopped = true;
      const seconds = (window.lastMs - walflow.spawnedAt) / 1000;
      context.log(`    walflow: ${seconds.toFixed(2)} s`);
      const profile = profiling === undefined ? undefined : { ...(await profiling.collect()), processes };
      return {
        events: backlog.events,
        done,
        capSeconds: done < backlog.events ? cap.seconds : undefined,
        recvlogicalEventsPerSecond: backlog.events / recv.endReachedSeconds,
        recvlogical: recv,
        walflow: {
          seconds,
          eventsPerSecond: done / seconds,
          steadyEventsPerSecond: (done - window.firstRows) / ((window.lastMs - window.firstMs) / 1000),
          startupSeconds: (window.firstMs - walflow.spawnedAt) / 1000,
          streamingSeconds: (streamingAt - walflow.spawnedAt) / 1000,
        },
        health,
        memory,
        profile,
      };
    } finally {
      if (!stopped) await walflow.stop().catch(() => {});
    }
  } finally {
    await database.drop();
  }
}
