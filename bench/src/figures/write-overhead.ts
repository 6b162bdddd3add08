import { emit } from '@walflow/outbox';
import pg from 'pg';
import { createBenchDatabase } from '../harness/bench-database.js';
import { withClient } from '../harness/pg-client.js';
import { spawnWalflow } from '../harness/walflow-child.js';
import { OUTBOX_EMPTY, waitUntil } from '../harness/walflow-measures.js';
import { target, type FigureResult, type Measurement } from '../report/result.js';
import { orderEvent } from '../workload.js';
import { deadlineAfter, scaled, type FigureContext } from './figure.js';

const CLIENTS = 8;
const TARGET_RATIO = 0.85;
/** No workflow matches it: walflow records these events and nothing more, as for most application events. */
const EVENT_TYPE = 'bench.order_written';

/** tx/s of each A (without emit()) and B (with) phase, in the order they ran. */
interface Alternation {
  without: number[];
  with: number[];
}

/**
 * Figure 1: domain transactions per second with and without emit() in the same explicit transaction, 8 clients,
 * alternated A/B/A/B so that drift on a shared machine hits both sides alike. Measured twice: with walflow stopped
 * (the cost of the outbox insert itself; the slot exists and keeps the WAL) and with `walflow start` draining the
 * outbox, which on this machine also takes CPU and fsyncs from the same two cores.
 */
export async function writeOverheadFigure(context: FigureContext): Promise<FigureResult> {
  const started = performance.now();
  const phaseSeconds = scaled(context, 10);
  const database = await createBenchDatabase(context.adminUrl, 'bench_write');
  try {
    await withClient(database.url, (client) =>
      client.query('CREATE SCHEMA bench; CREATE TABLE bench.orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now())'),
    );
    const clients = await connect(database.url, CLIENTS);
    try {
      const writer = new DomainWriter(clients);
      context.log(`  walflow stopped: warm-up, then A/B/A/B of ${phaseSeconds} s`);
      const stopped = await alternate(context, writer, phaseSeconds);
      const walflow = spawnWalflow({ databaseUrl: database.url, slot: database.name });
      try {
        await walflow.streaming;
        // The events of the first half are recorded before the second half starts.
        await waitUntil(database.url, OUTBOX_EMPTY, deadlineAfter(context, 600, 120).deadline);
        context.log(`  walflow running: A/B/A/B of ${phaseSeconds} s`);
        const running = await alternate(context, writer, phaseSeconds);
        const memory = await walflow.memory();
        return {
          id: 'write-overhead',
          title: '1 write overhead',
          measurements: [measurement('walflow running', running), measurement('walflow stopped', stopped)],
          memory: [{ label: 'write overhead', ...memory }],
          notes: [
            `${CLIENTS} clients, explicit transactions (BEGIN; INSERT INTO bench.orders; [emit()]; COMMIT), ${phaseSeconds} s per phase, A/B/A/B after a warm-up`,
            `events of type ${EVENT_TYPE}, which no workflow matches: walflow records them and nothing more`,
          ],
          details: { phaseSeconds, clients: CLIENTS, walflowRunning: running, walflowStopped: stopped },
          seconds: (performance.now() - started) / 1000,
        };
      } finally {
        await walflow.stop();
      }
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  } finally {
    await database.drop();
  }
}

function measurement(condition: string, phases: Alternation): Measurement {
  const without = mean(phases.without);
  const withEmit = mean(phases.with);
  const ratio = withEmit / without;
  return {
    name: `domain tx/s with emit(), ${condition}`,
    value: withEmit,
    unit: 'tx/s',
    baseline: { name: 'without emit()', value: without, unit: 'tx/s' },
    ratio,
    targets: [target(`ratio ≥ ${TARGET_RATIO}`, ratio >= TARGET_RATIO)],
  };
}

async function alternate(context: FigureContext, writer: DomainWriter, phaseSeconds: number): Promise<Alternation> {
  await writer.run(false, Math.max(1, phaseSeconds / 5));
  await writer.run(true, Math.max(1, phaseSeconds / 5));
  const phases: Alternation = { without: [], with: [] };
  for (let round = 1; round <= 2; round++) {
    phases.without.push(await writer.run(false, phaseSeconds));
    phases.with.push(await writer.run(true, phaseSeconds));
    context.log(`    round ${round}: ${phases.without.at(-1)!.toFixed(0)} tx/s without emit(), ${phases.with.at(-1)!.toFixed(0)} with`);
  }
  return phases;
}

/** The application: each client commits domain transactions as fast as it can, with or without an event. */
class DomainWriter {
  private order = 0;

  constructor(private readonly clients: readonly pg.Client[]) {}

  /** Runs for `seconds`; returns committed transactions per second. */
  async run(withEmit: boolean, seconds: number): Promise<number> {
    const deadline = performance.now() + seconds * 1000;
    let committed = 0;
    await Promise.all(
      this.clients.map(async (client) => {
        while (performance.now() < deadline) {
          const n = this.order++;
          await client.query('BEGIN');
          await client.query('INSERT INTO bench.orders (customer, amount) VALUES ($1, $2)', [`customer-${n % 1000}`, (n % 500) + 0.5]);
          if (withEmit) await emit(client, orderEvent(n, EVENT_TYPE));
          await client.query('COMMIT');
          committed++;
        }
      }),
    );
    return committed / seconds;
  }
}

async function connect(url: string, count: number): Promise<pg.Client[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const client = new pg.Client({ connectionString: url, application_name: 'walflow-bench-writer' });
      await client.connect();
      return client;
    }),
  );
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}
