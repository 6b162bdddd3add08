import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dispatchCostFigure } from './figures/dispatch-cost.js';
import { drainFigure } from './figures/drain.js';
import type { FigureContext } from './figures/figure.js';
import { latencyFigure } from './figures/latency.js';
import { peersFigure } from './figures/peers.js';
import { workersFigure } from './figures/workers.js';
import { writeOverheadFigure } from './figures/write-overhead.js';
import { startBenchPostgres } from './harness/durable-postgres.js';
import { parseOptions, type FigureId } from './options.js';
import { writeReport, type BenchReport } from './report/json.js';
import { renderProfiles } from './report/profile.js';
import type { FigureResult } from './report/result.js';
import { renderTable } from './report/table.js';

const RESULTS_FILE = fileURLToPath(new URL('../results/latest.json', import.meta.url));

const FIGURES: Record<FigureId, (context: FigureContext) => Promise<FigureResult>> = {
  'write-overhead': writeOverheadFigure,
  drain: drainFigure,
  latency: latencyFigure,
  workers: workersFigure,
  peers: peersFigure,
  dispatch: dispatchCostFigure,
};

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const startedAt = new Date();
  const postgres = await startBenchPostgres(log, options.profile);
  const figures: FigureResult[] = [];
  const failed: BenchReport['failed'] = [];
  try {
    const settings = Object.entries(postgres.settings).map(([name, value]) => `${name}=${value}`).join(', ');
    log(`PostgreSQL ${postgres.version}, durable: ${settings}`);
    const profileDir = options.profile ? await mkdtemp(join(tmpdir(), 'walflow-bench-profile-')) : undefined;
    const save = (): Promise<void> =>
      writeReport(RESULTS_FILE, {
        startedAt: startedAt.toISOString(),
        seconds: (Date.now() - startedAt.getTime()) / 1000,
        scale: options.scale,
        machine: { cpus: cpus().length, node: process.version, postgres: postgres.version },
        serverSettings: postgres.settings,
        profiled: options.profile,
        figures,
        failed,
      });
    for (const id of options.figures) {
      log(`figure ${id}${options.scale === 1 ? '' : ` (scale ${options.scale})`}`);
      try {
        figures.push(await FIGURES[id]({ adminUrl: postgres.url, scale: options.scale, profileDir, previous: figures, log }));
        // Saved after every figure: a long run that dies late keeps what it measured.
        await save();
      } catch (error) {
        failed.push({ figure: id, error: error instanceof Error ? error.message : String(error) });
        log(`figure ${id} failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
    await save();
    const seconds = (Date.now() - startedAt.getTime()) / 1000;
    const profiled = options.profile ? ', walflow CPU-profiled (--profile: slower than a plain run)' : '';
    process.stdout.write(`\nwalflow bench: PostgreSQL ${postgres.version} (${settings}), ${cpus().length} CPUs, Node ${process.version}, scale ${options.scale}${profiled}, ${Math.round(seconds)} s\n`);
    process.stdout.write(renderTable(figures));
    for (const { figure, error } of failed) process.stdout.write(`figure ${figure} FAILED: ${error}\n`);
    if (options.profile) process.stdout.write(`${renderProfiles(figures)}\n`);
    process.stdout.write(`written to ${RESULTS_FILE}\n`);
  } finally {
    await postgres.stop();
  }
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log((error as Error).message);
    process.exitCode = 1;
  },
);
