import { readFile } from 'node:fs/promises';
import { withClient } from './pg-client.js';

/**
 * What ran beside a figure: checkpoints, autovacuum and autoanalyze of one table, and the machine's CPU time
 * spent waiting for the disk or taken by the hypervisor (steal). A figure that came out far slower than usual
 * can then be told apart from one that shared its seconds with them.
 */
export interface BackgroundActivity {
  checkpoints: number;
  autovacuums: number;
  autoanalyzes: number;
  /** Shares of all CPU time during the figure, in percent. */
  iowaitPercent: number;
  stealPercent: number;
  idlePercent: number;
}

interface Snapshot {
  checkpoints: number;
  autovacuums: number;
  autoanalyzes: number;
  cpu: CpuTimes;
}

export interface CpuTimes {
  total: number;
  idle: number;
  iowait: number;
  steal: number;
}

/** Reads the counters now; `table` is schema-qualified. */
export async function snapshotActivity(url: string, table: string): Promise<Snapshot> {
  const counters = await withClient(url, async (client) => {
    const { rows } = await client.query<{ checkpoints: string; autovacuums: string | null; autoanalyzes: string | null }>(
      `SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) AS checkpoints,
              (SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = $1::regclass) AS autovacuums,
              (SELECT autoanalyze_count FROM pg_stat_user_tables WHERE relid = $1::regclass) AS autoanalyzes`,
      [table],
    );
    return rows[0]!;
  });
  return {
    checkpoints: Number(counters.checkpoints),
    autovacuums: Number(counters.autovacuums ?? 0),
    autoanalyzes: Number(counters.autoanalyzes ?? 0),
    cpu: await readCpuTimes(),
  };
}

export function activityBetween(before: Snapshot, after: Snapshot): BackgroundActivity {
  const total = after.cpu.total - before.cpu.total || 1;
  const percent = (key: keyof CpuTimes) => (100 * (after.cpu[key] - before.cpu[key])) / total;
  return {
    checkpoints: after.checkpoints - before.checkpoints,
    autovacuums: after.autovacuums - before.autovacuums,
    autoanalyzes: after.autoanalyzes - before.autoanalyzes,
    iowaitPercent: percent('iowait'),
    stealPercent: percent('steal'),
    idlePercent: percent('idle'),
  };
}

export function describeActivity(activity: BackgroundActivity, table: string): string {
  return (
    `beside it: ${activity.checkpoints} checkpoint(s), ${table} autovacuumed ${activity.autovacuums}× and autoanalyzed ` +
    `${activity.autoanalyzes}×; CPU idle ${activity.idlePercent.toFixed(0)} %, iowait ${activity.iowaitPercent.toFixed(1)} %, ` +
    `steal ${activity.stealPercent.toFixed(1)} %`
  );
}

/** The machine-wide `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal (guest time is in user). */
export async function readCpuTimes(): Promise<CpuTimes> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((row) => row.startsWith('cpu '));
  const fields = (line ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle, iowait, steal };
}
