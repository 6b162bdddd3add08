import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import { readCpuTimes } from './background-activity.js';

/** Linux reports a process's CPU time in clock ticks of 1/100 s (USER_HZ) on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;
const SAMPLE_MS = 500;

export interface CpuShare {
  who: string;
  /** CPU time over the window, in cores: 0.5 is half of one core. */
  cores: number;
}

export interface ProcessCpu {
  seconds: number;
  /** Busy CPU of the whole machine over the window, in cores. */
  machineCores: number;
  shares: CpuShare[];
}

export interface ProcessCpuSampler {
  stop(): Promise<ProcessCpu>;
}

/**
 * Where the machine's CPU goes while a figure runs: the walflow process, the bench's own process, and
 * PostgreSQL's processes by who they serve (pg_stat_activity: walflow's sessions, the load's, the walsender,
 * the server's own). Processes are sampled every half second and keep their last sample when they exit (the
 * load's sessions close when the load ends), so one that ends is undercounted by at most one interval.
 */
export async function sampleProcessCpu(url: string, walflowPid: number): Promise<ProcessCpuSampler> {
  const client = new pg.Client({ connectionString: url, application_name: 'walflow-bench-sampler' });
  await client.connect();
  const owners = new Map<number, string>([
    [walflowPid, 'walflow process'],
    [process.pid, 'bench process (load generator, health probe, polls)'],
  ]);
  const sample = async (): Promise<Map<number, number>> => {
    const { rows } = await client.query<{ pid: number; application_name: string; backend_type: string }>(
      'SELECT pid, application_name, backend_type FROM pg_stat_activity',
    );
    for (const row of rows) if (!owners.has(row.pid)) owners.set(row.pid, postgresOwner(row));
    return processTicks();
  };
  const startedAt = performance.now();
  const machineBefore = await machineBusyTicks();
  // Processes running at the start count from their ticks then; those started later from zero.
  const first = await sample();
  const last = new Map(first);
  let sampling = Promise.resolve();
  let failure: Error | undefined;
  const timer = setInterval(() => {
    sampling = sampling
      .then(async () => {
        for (const [pid, ticks] of await sample()) last.set(pid, ticks);
      })
      .catch((error: unknown) => {
        failure ??= error instanceof Error ? error : new Error('sampling the CPU of processes failed', { cause: error });
      });
  }, SAMPLE_MS);
  return {
    async stop() {
      clearInterval(timer);
      try {
        await sampling;
        if (failure !== undefined) throw failure;
        for (const [pid, ticks] of await sample()) last.set(pid, ticks);
      } finally {
        await client.end();
      }
      const seconds = (performance.now() - startedAt) / 1000;
      const toCores = (ticks: number): number => ticks / TICKS_PER_SECOND / seconds;
      const totals = new Map<string, number>();
      for (const [pid, ticks] of last) {
        const who = owners.get(pid);
        if (who !== undefined) totals.set(who, (totals.get(who) ?? 0) + ticks - (first.get(pid) ?? 0));
      }
      const machineCores = toCores((await machineBusyTicks()) - machineBefore);
      const shares = [...totals].map(([who, ticks]) => ({ who, cores: toCores(ticks) }));
      const named = shares.reduce((sum, share) => sum + share.cores, 0);
      shares.push({ who: 'everything else on the machine', cores: Math.max(0, machineCores - named) });
      return { seconds, machineCores, shares: shares.sort((a, b) => b.cores - a.cores) };
    },
  };
}

/** utime + stime of every process now, by pid. */
async function processTicks(): Promise<Map<number, number>> {
  const ticks = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state is the first, utime the 12th, stime the 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // The process ended between readdir and readFile.
    }
  }
  return ticks;
}

/** A PostgreSQL process, named by the application it serves or by its own role in the server. */
function postgresOwner(row: { application_name: string; backend_type: string }): string {
  if (row.backend_type === 'walsender') return 'PostgreSQL walsender';
  if (row.backend_type !== 'client backend') return 'PostgreSQL server processes';
  if (row.application_name === 'walflow') return "walflow's PostgreSQL sessions";
  return `PostgreSQL sessions of ${row.application_name || 'unnamed clients'}`;
}

/** Busy time of the whole machine: all of it but idle and iowait. */
async function machineBusyTicks(): Promise<number> {
  const cpu = await readCpuTimes();
  return cpu.total - cpu.idle - cpu.iowait;
}
