import { activityBetween, describeActivity, snapshotActivity } from '../harness/background-activity.js';
import { writeBacklog } from '../harness/backlog.js';
import { createBenchDatabase } from '../harness/bench-database.js';
import { spawnWalflow } from '../harness/walflow-child.js';
import { profilePhase } from '../harness/walflow-profile.js';
import { executionWindow, OUTBOX_EMPTY, RUNS_DONE, waitUntil, walflowCounts } from '../harness/walflow-measures.js';
import { target, type FigureResult } from '../report/result.js';
import { NOTIFY_ON_ORDER, WALFLOW_BACKLOG_INSERT } from '../workload.js';
import { deadlineAfter, scaled, type FigureContext } from './figure.js';

const TARGET_RUNS_PER_SECOND = 5000;
const RUNS_TABLE = 'walflow.workflow_runs';

/**
 * Figure 4: queued runs of a no-side-effect action (create_notification) executed by `walflow start` with the
 * default worker settings. The runs are queued first by a walflow with workers off; the clock runs from the first
 * claim to the commit of the last success.
 */
export async function workersFigure(context: FigureContext): Promise<FigureResult> {
  const started = performance.now();
  const transactions = scaled(context, 500);
  const runs = transactions * 100;
  const database = await createBenchDatabase(context.adminUrl, 'bench_workers', [NOTIFY_ON_ORDER]);
  try {
    await writeBacklog(database.url, WALFLOW_BACKLOG_INSERT, { transactions, eventsPerTransaction: 100 });
    const queueing = spawnWalflow({ databaseUrl: database.url, slot: database.name, env: { WALFLOW_WORKER_CONCURRENCY: '0' } });
    try {
      if (!(await waitUntil(database.url, OUTBOX_EMPTY, deadlineAfter(context, 900, 300).deadline))) {
        throw new Error(`the ${runs} runs were not queued in time`);
      }
    } finally {
      await queueing.stop();
    }
    const { runs: queued } = await walflowCounts(database.url);
    if (queued !== runs) throw new Error(`${queued} runs were queued for ${runs} events`);
    context.log(`  ${runs.toLocaleString('en')} runs queued; executing`);
    const profiling = await profilePhase(context.profileDir, 'workers', database.url);
    const before = await snapshotActivity(database.url, RUNS_TABLE);
    const walflow = spawnWalflow({ databaseUrl: database.url, slot: database.name, cpuProfileDir: profiling?.dir });
    let stopped = false;
    try {
      const cap = deadlineAfter(context, 300, 60);
      const finished = await waitUntil(database.url, RUNS_DONE, cap.deadline);
      const { succeeded } = await walflowCounts(database.url);
      const window = await executionWindow(database.url);
      const runsPerSecond = succeeded / ((window.lastMs - window.firstMs) / 1000);
      const fromSpawn = succeeded / ((window.lastMs - walflow.spawnedAt) / 1000);
      // Runs that failed end the wait as surely as runs that succeeded: either way the target is not met.
      const shortfall = !finished
        ? ` (stopped after ${cap.seconds} s: ${succeeded.toLocaleString('en')} succeeded)`
        : succeeded < runs
          ? ` (${(runs - succeeded).toLocaleString('en')} runs did not succeed)`
          : '';
      const background = activityBetween(before, await snapshotActivity(database.url, RUNS_TABLE));
      context.log(`  ${runsPerSecond.toFixed(0)} runs/s; ${describeActivity(background, RUNS_TABLE)}`);
      const memory = await walflow.memory();
      await walflow.stop();
      stopped = true;
      const profile = await profiling?.collect();
      return {
        id: 'workers',
        title: '4 workers',
        measurements: [
          {
            name: `${runs.toLocaleString('en')} queued runs, first claim to last success${shortfall}`,
            value: runsPerSecond,
            unit: 'runs/s',
            targets: [target(`≥ ${TARGET_RUNS_PER_SECOND.toLocaleString('en')} runs/s`, shortfall === '' && runsPerSecond >= TARGET_RUNS_PER_SECOND)],
          },
          { name: 'the same from spawning walflow start', value: fromSpawn, unit: 'runs/s' },
        ],
        memory: [{ label: 'workers', ...memory }],
        notes: [
          'default worker settings (WALFLOW_WORKER_CONCURRENCY=4, WALFLOW_WORKER_CLAIM_BATCH=200); action: create_notification; each event of its own aggregate, so ordering never waits',
          describeActivity(background, RUNS_TABLE),
        ],
        details: { runs, succeeded, runsPerSecond, fromSpawn, window, background, profile },
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      if (!stopped) await walflow.stop().catch(() => {});
    }
  } finally {
    await database.drop();
  }
}
