import { SqlState, sqlStateOf, WalflowError } from '@walflow/core';
import { sinkName } from '@walflow/nats-sink';
import { computeHealth, type HealthReport } from '@walflow/server';
import type { Command } from 'commander';
import { commandContext, withDatabase, type CommandContext } from '../context.js';

const PROBE_TIMEOUT_MS = 1000;
/**
 * The longest a statement of the report from the database may take: a lock held on walflow's tables (a `VACUUM
 * FULL`, a `LOCK TABLE`) would otherwise keep the command, and the monitoring script that runs it, waiting for ever.
 */
const STATEMENT_TIMEOUT_MS = 10_000;

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('health of walflow: replication lag, slot, runs and checks (from the running process, else from the database)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const context = commandContext({ logToStdout: false });
      const { config } = context;
      const live = await probe(`http://127.0.0.1:${config.httpPort}/health`, config.slotName);
      // Without a process to ask, the sink's backlog still comes from its cursor in the database.
      const sink = config.natsSink === undefined ? undefined : { name: sinkName(config.natsSink) };
      const report = live ?? (await fromDatabase(context, sink));
      if (options.json) process.stdout.write(`${JSON.stringify({ source: live === null ? 'database' : 'process', ...report }, null, 2)}\n`);
      else process.stdout.write(describe(report, live === null ? 'computed from the database; no walflow process answered' : 'from the running walflow process'));
      if (report.status === 'down') process.exitCode = 1;
    });
}

async function fromDatabase(context: CommandContext, sink: { name: string } | undefined): Promise<HealthReport> {
  const { config } = context;
  try {
    return await withDatabase(context, (db) => computeHealth(db, { slotName: config.slotName, thresholds: config.healthThresholds, sink }), {
      statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    });
  } catch (error) {
    if (sqlStateOf(error) !== SqlState.queryCanceled && !(error instanceof Error && /Query read timeout/.test(error.message))) throw error;
    throw new WalflowError('database_unavailable', `the database did not answer within ${STATEMENT_TIMEOUT_MS / 1000} s (a lock on walflow's tables, or a server that stalls): status unknown`, {
      cause: error,
    });
  }
}

/**
 * The running process's cached report, or null when nothing answers on the port, something else does, or a walflow
 * of another slot does (another installation on this machine, with the same port).
 */
async function probe(url: string, slotName: string): Promise<HealthReport | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body: unknown = await response.json();
    // A report without a slot cannot say whose it is: the database's own says the same of a missing slot.
    return isReport(body) && body.slot?.name === slotName ? body : null;
  } catch {
    return null;
  }
}

function isReport(body: unknown): body is HealthReport {
  if (typeof body !== 'object' || body === null) return false;
  const candidate = body as Partial<HealthReport>;
  return typeof candidate.status === 'string' && Array.isArray(candidate.checks) && typeof candidate.lag === 'object' && typeof candidate.runs === 'object';
}

function describe(report: HealthReport, source: string): string {
  const { lag, runs } = report;
  const lines = [
    `status: ${report.status} (${source})`,
    `role: ${report.role ?? 'unknown'}`,
    `slot: ${report.slot === null ? 'missing' : `${report.slot.name}, ${report.slot.active ? 'active' : 'inactive'}, wal_status ${report.slot.walStatus ?? 'unknown'}`}`,
    `lag: ${lag.seconds.toFixed(1)} s, ${bytes(lag.bytes)} behind; retained ${bytes(lag.retainedBytes)}` +
      (lag.safeWalSizeBytes === null ? '' : `, ${bytes(lag.safeWalSizeBytes)} until the slot is invalidated`),
    `runs: ${runs.queued} queued (oldest ${runs.oldestQueuedSeconds.toFixed(1)} s), ${runs.running} running, ${runs.dead} dead`,
    `dead letters: ${report.deadLetters} open`,
    ...(report.sink === undefined ? [] : [describeSink(report.sink)]),
    `last event committed: ${report.lastEventAt ?? 'never'}`,
    'checks:',
    ...report.checks.map((check) => `  ${check.state.padEnd(8)} ${check.name.padEnd(18)} ${check.message}`),
  ];
  return `${lines.join('\n')}\n`;
}

function describeSink(sink: NonNullable<HealthReport['sink']>): string {
  const published = sink.published === null ? 'never ran' : `${sink.published} published`;
  return `sink: ${sink.name} (JetStream), ${sink.state ?? 'no process'}, ${published}, ${sink.pending} pending (oldest ${sink.lagSeconds.toFixed(1)} s)`;
}

function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${unit === 0 ? scaled.toFixed(0) : scaled.toFixed(1)} ${units[unit] ?? 'B'}`;
}
