import type { ProcessCpu } from '../harness/process-cpu.js';
import type { WalflowProfile } from '../harness/walflow-profile.js';
import type { FigureResult } from './result.js';
import { formatNumber } from './table.js';

interface ProfiledRun {
  profile?: WalflowProfile & { processes?: ProcessCpu | undefined };
  /** A drain's backlog: its CPU is also shown per event. */
  events?: number;
}

/** With --profile: where the walflow process spent its CPU and PostgreSQL its time, per profiled phase. */
export function renderProfiles(figures: readonly FigureResult[]): string {
  const out: string[] = [];
  for (const figure of figures) {
    const details = (figure.details ?? {}) as Record<string, ProfiledRun>;
    const phases: [string, ProfiledRun][] = 'profile' in details ? [[figure.id, details]] : Object.entries(details).map(([label, run]) => [`${figure.id} ${label}`, run]);
    for (const [label, run] of phases) {
      if (run?.profile === undefined) continue;
      const { cpu, statements, processes } = run.profile;
      out.push(`\nprofile of walflow during ${label}: ${cpu.file} (${formatNumber(cpu.totalMs)} ms)`);
      out.push('  self time by module:');
      for (const spot of cpu.modules.slice(0, 12)) out.push(`    ${formatNumber(spot.selfPercent).padStart(6)} %  ${spot.frame}`);
      out.push('  self time by function:');
      for (const spot of cpu.functions) out.push(`    ${formatNumber(spot.selfPercent).padStart(6)} %  ${spot.frame}`);
      out.push('  pg_stat_statements, by execution + planning time (↳: inside a function or trigger, its time also in its caller):');
      for (const statement of statements) {
        const spent = `${formatNumber(statement.totalMs).padStart(9)} ms + ${formatNumber(statement.planMs).padStart(7)} ms planning`;
        const text = `${statement.nested ? '↳ ' : ''}${statement.query.slice(0, 130)}`;
        out.push(`    ${spent}  ${String(statement.calls).padStart(7)} calls  ${formatNumber(statement.meanMs).padStart(7)} ms/call  ${text}`);
      }
      if (processes !== undefined) {
        out.push(`  CPU while it ran (${formatNumber(processes.seconds)} s; the machine busy ${formatNumber(processes.machineCores)} cores):`);
        for (const share of processes.shares) {
          const perEvent = run.events === undefined ? '' : `  ${formatNumber((share.cores * processes.seconds * 1e6) / run.events).padStart(6)} µs an event`;
          out.push(`    ${formatNumber(share.cores).padStart(6)} cores${perEvent}  ${share.who}`);
        }
      }
    }
  }
  return out.join('\n');
}
