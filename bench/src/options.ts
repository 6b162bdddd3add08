export const FIGURE_IDS = ['write-overhead', 'drain', 'latency', 'workers', 'peers', 'dispatch'] as const;
export type FigureId = (typeof FIGURE_IDS)[number];

export interface BenchOptions {
  /** Multiplies every event count and duration: 1 for the full run, 0.1 with --quick. */
  scale: number;
  figures: FigureId[];
  /**
   * CPU-profile the walflow process and read pg_stat_statements during the drain, latency and workers figures, and
   * during the drains and the latency figure's load, the CPU of each process on the machine.
   */
  profile: boolean;
}

const USAGE = `usage: pnpm bench [--quick] [--only <figure>[,<figure>…]] [--profile]
  --quick          every figure about 10× smaller (or BENCH_SCALE=<factor>)
  --only <figure>  ${FIGURE_IDS.join(', ')}
  --profile        node --cpu-prof of walflow and pg_stat_statements during the drain, latency and workers
                   figures; during the drains and under the latency figure's load, the CPU of each process`;

/** Reads the command line and BENCH_SCALE; an unknown argument fails with the usage. */
export function parseOptions(argv: readonly string[], env: Record<string, string | undefined>): BenchOptions {
  let scale = env.BENCH_SCALE === undefined || env.BENCH_SCALE === '' ? 1 : Number(env.BENCH_SCALE);
  let figures: FigureId[] = [...FIGURE_IDS];
  let profile = false;
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === '--') continue;
    if (argument === '--quick') scale = 0.1;
    else if (argument === '--profile') profile = true;
    else if (argument === '--only') {
      const names = (argv[++i] ?? '').split(',').filter((name) => name !== '');
      const unknown = names.filter((name) => !(FIGURE_IDS as readonly string[]).includes(name));
      if (names.length === 0 || unknown.length > 0) throw new Error(`unknown figure ${unknown.join(', ') || '(none)'}\n${USAGE}`);
      figures = FIGURE_IDS.filter((id) => names.includes(id));
    } else if (argument === '--help' || argument === '-h') throw new Error(USAGE);
    else throw new Error(`unknown argument ${argument}\n${USAGE}`);
  }
  if (!Number.isFinite(scale) || scale <= 0 || scale > 10) throw new Error(`BENCH_SCALE must be a number in (0, 10], got ${env.BENCH_SCALE}`);
  return { scale, figures, profile };
}
