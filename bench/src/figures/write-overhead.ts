import { emit } from '@walflow/outbox';
import pg from 'pg';
import { createBenchDatabase } from '../harness/bench-database.js';
import { withClient } from '../harness/pg-client.js';
import { mean } from '../harness/percentiles.js';
import { spawnWalflow } from '../harness/walflow-child.js';
import { OUTBOX_EMPTY, waitUntil } from '../harness/walflow-measures.js';
import { target, type FigureResult, type Measurement } from '../report/result.js';
import { orderEvent } from '../workload.js';
import { deadlineAfter, scaled, type FigureContext } from './figure.js';

const CLIENTS = 8;
const TARGET_RATIO = 0.85;
/** No workflow matches it: walflow records these events and nothing more, as for most application events. */
const EVENT_TYPE = 'bench.order_written';
/** The prefix of the reference phase's logical messages; walflow's slot filters it out. */
const MESSAGE_PREFIX = 'bench.event';

/**
 * How a domain transaction writes its event: not at all (A), with emit() as a statement of its own (B, the
 * issue's figure), or with walflow.emit() inside the domain statement itself (C: one round trip fewer). Two
 * more phases measure what any event write costs on this machine, for reference: a second domain row instead of
 * the event (D), and the event as a transactional logical decoding message, the smallest thing a transaction
 * can put in the WAL for a consumer (E).
 */
type EventWrite = 'without' | 'with' | 'inStatement' | 'secondRow' | 'message';

/** tx/s of each phase, in the order they ran. */
type Alternation = Record<EventWrite, number[]>;

/**
 * Figure 1: domain transactions per second with and without emit() in the same explicit transaction, 8 clients,
 * alternated (A/B/C/D/E, then E/D/C/B/A) so that drift on a shared machine hits both sides alike. Measured twice: with walflow stopped
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
      context.log(`  walflow stopped: warm-up, then A/B/C/D/E and E/D/C/B/A, ${phaseSeconds} s each`);
      const stopped = await alternate(context, writer, phaseSeconds);
      const walflow = spawnWalflow({ databaseUrl: database.url, slot: database.name });
      try {
        await walflow.streaming;
        // The events of the first half are recorded before the second half starts.
        if (!(await waitUntil(database.url, OUTBOX_EMPTY, deadlineAfter(context, 600, 120).deadline))) {
          throw new Error('walflow did not record the events of the phases with walflow stopped in time');
        }
        context.log(`  walflow running: A/B/C/D/E and E/D/C/B/A, ${phaseSeconds} s each`);
        const running = await alternate(context, writer, phaseSeconds);
        const memory = await walflow.memory();
        return {
          id: 'write-overhead',
          title: '1 write overhead',
          measurements: [
            measurement('walflow running', running),
            ...referenceMeasurements('walflow running', running),
            measurement('walflow stopped', stopped),
            ...referenceMeasurements('walflow stopped', stopped),
          ],
          memory: [{ label: 'write overhead', ...memory }],
          notes: [
            `${CLIENTS} clients, explicit transactions (BEGIN; INSERT INTO bench.orders; [emit()]; COMMIT), ${phaseSeconds} s per phase, A/B/C/D/E then E/D/C/B/A after a warm-up`,
            'the writers connect as the cluster’s superuser, as an application owning its tables would: an application role in walflow_app also pays the outbox’s row-security check on each insert',
            'C, for reference (no target): the event written by walflow.emit() inside the domain statement (WITH placed AS (INSERT … RETURNING id) SELECT walflow.emit(…) FROM placed), one round trip as without',
            'D and E, for reference (no target): a second INSERT INTO bench.orders instead of the event; the event as pg_logical_emit_message(true, …), which walflow does not use (README, Performance)',
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

const REFERENCE_PHASES: ReadonlyArray<readonly [write: EventWrite, description: string]> = [
  ['inStatement', 'with walflow.emit() in the domain statement'],
  ['secondRow', 'with a second domain row instead of the event'],
  ['message', 'with the event as a logical message instead'],
];

/** C, D and E beside A: what an application gets when the event rides in its own statement, and what any write costs. */
function referenceMeasurements(condition: string, phases: Alternation): Measurement[] {
  const without = mean(phases.without);
  return REFERENCE_PHASES.map(([write, description]) => {
    const value = mean(phases[write]);
    return {
      name: `domain tx/s ${description}, ${condition}`,
      value,
      unit: 'tx/s',
      baseline: { name: 'without emit()', value: without, unit: 'tx/s' },
      ratio: value / without,
    };
  });
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

const EVENT_WRITES: readonly EventWrite[] = ['without', 'with', 'inStatement', 'secondRow', 'message'];

async function alternate(context: FigureContext, writer: DomainWriter, phaseSeconds: number): Promise<Alternation> {
  for (const write of EVENT_WRITES) await writer.run(write, Math.max(1, phaseSeconds / 5));
  const phases: Alternation = { without: [], with: [], inStatement: [], secondRow: [], message: [] };
  for (let round = 1; round <= 2; round++) {
    // A/B/C/D/E, then E/D/C/B/A: a drift over the figure (the outbox growing while walflow is stopped, the
    // machine's load) weighs on every phase alike.
    const order = round === 1 ? EVENT_WRITES : [...EVENT_WRITES].reverse();
    for (const write of order) phases[write].push(await writer.run(write, phaseSeconds));
    const [without, withEmit, inStatement, secondRow, message] = EVENT_WRITES.map((write) => phases[write].at(-1)!.toFixed(0));
    context.log(
      `    round ${round}: ${without} tx/s without emit(), ${withEmit} with, ${inStatement} with walflow.emit() in the domain statement, ` +
        `${secondRow} with a second domain row, ${message} with a logical message`,
    );
  }
  return phases;
}

const INSERT_ORDER = 'INSERT INTO bench.orders (customer, amount) VALUES ($1, $2)';

/** The application: each client commits domain transactions as fast as it can, with or without an event. */
class DomainWriter {
  private order = 0;

  constructor(private readonly clients: readonly pg.Client[]) {}

  /** Runs for `seconds`; returns committed transactions per second. */
  async run(write: EventWrite, seconds: number): Promise<number> {
    const deadline = performance.now() + seconds * 1000;
    let committed = 0;
    await Promise.all(
      this.clients.map(async (client) => {
        while (performance.now() < deadline) {
          const n = this.order++;
          const order = [`customer-${n % 1000}`, (n % 500) + 0.5];
          await client.query('BEGIN');
          if (write === 'inStatement') {
            const event = orderEvent(n, EVENT_TYPE);
            await client.query(
              `WITH placed AS (INSERT INTO bench.orders (customer, amount) VALUES ($1, $2) RETURNING id)
               SELECT walflow.emit($3, $4::jsonb, $5, $6) FROM placed`,
              [...order, event.type, JSON.stringify(event.payload), event.aggregateType, event.aggregateId],
            );
          } else {
            await client.query(INSERT_ORDER, order);
            if (write === 'with') await emit(client, orderEvent(n, EVENT_TYPE));
            else if (write === 'secondRow') await client.query(INSERT_ORDER, order);
            else if (write === 'message') await client.query('SELECT pg_logical_emit_message(true, $1, $2)', [MESSAGE_PREFIX, JSON.stringify(orderEvent(n, EVENT_TYPE))]);
          }
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
