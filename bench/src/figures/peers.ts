import { writeBacklog } from '../harness/backlog.js';
import { createBenchDatabase } from '../harness/bench-database.js';
import { runPacedLoad } from '../harness/paced-load.js';
import { censoredDistribution, type Distribution } from '../harness/percentiles.js';
import { queryValue } from '../harness/pg-client.js';
import { commitWindow, numbers, waitUntil } from '../harness/walflow-measures.js';
import type { Peer } from '../peers/peer.js';
import { spawnPeer } from '../peers/peer-process.js';
import { PEERS } from '../peers/registry.js';
import { target, type FigureResult, type Measurement } from '../report/result.js';
import { scaled, type FigureContext } from './figure.js';
import { WALFLOW_DRAIN_KEY, WALFLOW_RECORD_ONLY_DRAIN_KEY } from './drain.js';
import { ACHIEVED_RATE_SHARE, spread, WALFLOW_RECORD_ONLY_P99_KEY, WALFLOW_RECORDED_P99_KEY } from './latency.js';

const LOAD_RATE = 1000;
const LOAD_CONNECTIONS = 16;

interface PeerOutcome {
  peer: string;
  /** `failure`: how the peer's process ended when it was stopped, if not cleanly. */
  drain: { events: number; recorded: number; seconds: number; eventsPerSecond: number; capped: boolean; failure: string | null };
  latency: { sent: number; recorded: number; achievedRate: number; recordedLatency: Distribution; failure: string | null };
}

/**
 * Figure 5: the same backlog (1,000 transactions of 100 events, as in figure 2) and the same steady load (1,000
 * events/s, as in figure 3) through two peers, each in a fresh database, each recording into a table. A peer that
 * cannot finish is stopped after a time cap and its rate is what it did until then.
 */
export async function peersFigure(context: FigureContext): Promise<FigureResult> {
  const started = performance.now();
  const transactions = scaled(context, 1000);
  const loadSeconds = Math.max(2, Math.round(20 * context.scale));
  const capSeconds = Math.max(15, Math.round(90 * context.scale));
  const walflow = walflowFigures(context);
  const outcomes: PeerOutcome[] = [];
  for (const peer of PEERS) {
    context.log(`  ${peer.name}`);
    outcomes.push({
      peer: peer.name,
      drain: await drainPeer(context, peer, transactions, capSeconds),
      latency: await loadPeer(context, peer, loadSeconds, capSeconds),
    });
  }
  const measurements: Measurement[] = [];
  const notes: string[] = [];
  for (const outcome of outcomes) {
    const { drain, latency } = outcome;
    const drained = latency.recorded === latency.sent;
    const failures = [drain.failure, latency.failure].filter((failure): failure is string => failure !== null);
    notes.push(...failures.map((failure) => `${outcome.peer} failed when stopped: ${failure}`));
    const capped = drain.capped ? ` (stopped after ${capSeconds} s, ${drain.recorded.toLocaleString('en')} recorded)` : '';
    const drainName = `drain ${transactions.toLocaleString('en')} tx × 100`;
    // A peer under a lighter load than asked had an easier time: its line says so, as walflow's do.
    const shortOf = latency.achievedRate >= LOAD_RATE * ACHIEVED_RATE_SHARE ? '' : `, the peer's load reaching ${latency.achievedRate.toFixed(0)}/s`;
    const unrecorded = drained ? '' : ` (only ${latency.recorded} of ${latency.sent} recorded within ${capSeconds} s)`;
    measurements.push(
      // walflow's rate ÷ the peer's, as every ratio of the bench is walflow's ÷ its baseline's.
      walflow.drain === undefined
        ? { name: `${outcome.peer}: ${drainName}${capped}`, value: drain.eventsPerSecond, unit: 'events/s' }
        : {
            name: `${drainName}: walflow beside ${outcome.peer}${capped}`,
            value: walflow.drain,
            unit: 'events/s',
            baseline: { name: outcome.peer, value: drain.eventsPerSecond, unit: 'events/s' },
            ratio: walflow.drain / drain.eventsPerSecond,
            targets: [target('walflow ahead', walflow.drain > drain.eventsPerSecond)],
          },
      ...(walflow.recordOnlyDrain === undefined
        ? []
        : [
            {
              name: `${drainName}: walflow recording only beside ${outcome.peer}${capped}`,
              value: walflow.recordOnlyDrain,
              unit: 'events/s',
              baseline: { name: outcome.peer, value: drain.eventsPerSecond, unit: 'events/s' },
              ratio: walflow.recordOnlyDrain / drain.eventsPerSecond,
              targets: [target('walflow ahead, like for like', walflow.recordOnlyDrain > drain.eventsPerSecond)],
            },
          ]),
      {
        name: `${outcome.peer}: ${LOAD_RATE}/s commit→recorded p50/p95/p99/max${unrecorded}${shortOf}`,
        value: latency.recordedLatency.p99,
        display: spread(latency.recordedLatency),
        unit: 'ms',
        ...(walflow.latencyP99 === undefined
          ? {}
          : {
              baseline: { name: 'walflow p99', value: walflow.latencyP99, unit: 'ms' },
              targets: [target('walflow ahead', walflow.latencyP99 < latency.recordedLatency.p99)],
            }),
      },
      ...(walflow.recordOnlyLatencyP99 === undefined
        ? []
        : [
            {
              name: `${outcome.peer}: ${LOAD_RATE}/s commit→recorded p99, beside walflow recording only${shortOf}`,
              value: latency.recordedLatency.p99,
              unit: 'ms',
              baseline: { name: 'walflow p99, no workflow matching', value: walflow.recordOnlyLatencyP99, unit: 'ms' },
              targets: [target('walflow ahead, like for like', walflow.recordOnlyLatencyP99 < latency.recordedLatency.p99)],
            },
          ]),
    );
  }
  return {
    id: 'peers',
    title: '5 peers',
    measurements,
    memory: [],
    notes: [
      ...PEERS.map((peer) => peer.description),
      ...notes,
      'each peer runs in a process of its own, in a fresh database; timed from its spawn, like walflow; walflow’s figures beside them are its drain of the same backlog (figure 2, workers off) and its commit→recorded p99 at the same load (figure 3); a drain’s ratio is walflow’s rate ÷ the peer’s',
      'beside walflow recording only: the same drain against figure 2’s backlog, and the same load against figure 3’s line, with no workflow matching, where walflow records each event and queues nothing, as the peers do (like for like); the line before each holds walflow to its drain with a run queued per event, or to its latency while its workers execute a run per event, which the peers do not do',
      `steady load: ${loadSeconds} s at ${LOAD_RATE}/s, one autocommitted INSERT into the peer’s outbox per event; latency: commit of the recording transaction minus commit of the outbox row, both from commit timestamps`,
      ...(walflow.drain === undefined || walflow.latencyP99 === undefined ? ['run with the drain and latency figures to compare with walflow'] : []),
    ],
    details: { transactions, loadSeconds, capSeconds, outcomes, walflow },
    seconds: (performance.now() - started) / 1000,
  };
}

interface WalflowFigures {
  drain: number | undefined;
  recordOnlyDrain: number | undefined;
  latencyP99: number | undefined;
  recordOnlyLatencyP99: number | undefined;
}

/**
 * walflow's drain rates of 1,000 × 100 and its p99 commit→recorded at 1,000/s, each with a run per event and
 * recording only, when those figures ran.
 */
function walflowFigures(context: FigureContext): WalflowFigures {
  const find = (key: string): number | undefined =>
    context.previous.flatMap((result) => result.measurements).find((measurement) => measurement.key === key)?.value;
  return {
    drain: find(WALFLOW_DRAIN_KEY),
    recordOnlyDrain: find(WALFLOW_RECORD_ONLY_DRAIN_KEY),
    latencyP99: find(WALFLOW_RECORDED_P99_KEY),
    recordOnlyLatencyP99: find(WALFLOW_RECORD_ONLY_P99_KEY),
  };
}

async function drainPeer(context: FigureContext, peer: Peer, transactions: number, capSeconds: number): Promise<PeerOutcome['drain']> {
  const database = await createBenchDatabase(context.adminUrl, 'bench_peer');
  try {
    await peer.setup(database.url, database.name);
    const backlog = await writeBacklog(database.url, peer.backlogInsert, { transactions, eventsPerTransaction: 100 });
    const startedAt = Date.now();
    const running = spawnPeer(peer.name, database.url, database.name);
    let failure: string | null;
    try {
      await running.ready;
      await waitUntil(database.url, peer.drained, startedAt + capSeconds * 1000);
    } finally {
      failure = await running.stop();
    }
    // Counted once the peer is stopped, so that the count and the window below hold the same rows.
    const recorded = await recordedCount(database.url);
    const window = await commitWindow(database.url, 'SELECT pg_xact_commit_timestamp(xmin) AS at FROM bench.recorded');
    const seconds = (window.lastMs - startedAt) / 1000;
    context.log(`    drain: ${recorded} events in ${seconds.toFixed(2)} s${failure === null ? '' : `; then it failed: ${failure}`}`);
    return { events: backlog.events, recorded, seconds, eventsPerSecond: recorded / seconds, capped: recorded < backlog.events, failure };
  } finally {
    await database.drop();
  }
}

async function loadPeer(context: FigureContext, peer: Peer, loadSeconds: number, capSeconds: number): Promise<PeerOutcome['latency']> {
  const database = await createBenchDatabase(context.adminUrl, 'bench_peer');
  try {
    await peer.setup(database.url, database.name);
    const running = spawnPeer(peer.name, database.url, database.name);
    let load;
    let failure: string | null;
    try {
      await running.ready;
      load = await runPacedLoad({ url: database.url, ratePerSecond: LOAD_RATE, seconds: loadSeconds, connections: LOAD_CONNECTIONS, statement: (n) => peer.loadStatement(n) });
      await waitUntil(database.url, peer.drained, Date.now() + capSeconds * 1000);
    } finally {
      failure = await running.stop();
    }
    const recorded = await recordedCount(database.url);
    const latency = censoredDistribution(
      await numbers(database.url, 'SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - committed_at) * 1000 AS ms FROM bench.recorded'),
      load.events,
    );
    context.log(`    ${LOAD_RATE}/s: ${recorded} of ${load.events} recorded, ${spread(latency)} ms${failure === null ? '' : `; then it failed: ${failure}`}`);
    return { sent: load.events, recorded, achievedRate: load.rate, recordedLatency: latency, failure };
  } finally {
    await database.drop();
  }
}

function recordedCount(url: string): Promise<number> {
  return queryValue<string>(url, 'SELECT count(*) FROM bench.recorded').then(Number);
}
