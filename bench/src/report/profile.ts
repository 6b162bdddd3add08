import type { ProfileSummary } from '../harness/cpu-profile.js';
import type { StatementCost } from '../harness/pg-stat-statements.js';
import type { FigureResult } from './result.js';
import { formatNumber } from './table.js';

interface ProfiledRun {
  profile?: { cpu: ProfileSummary; statements: StatementCost[] };
}

/** With --profile: where the walflow process spent its CPU and PostgreSQL its time, per profiled phase. */
export function renderProfiles(figures: readonly FigureResult[]): string {
  const out: string[] = [];
  for (const figure of figures) {
    const details = (figure.details ?? {}) as Record<string, ProfiledRun>;
    const phases: [string, ProfiledRun][] = 'profile' in details ? [[figure.id, details]] : Object.entries(details).map(([label, run]) => [`${figure.id} ${label}`, run]);
    for (const [label, run] of phases) {
      if (run?.profile === undefined) continue;
      const { cpu, statements } = run.profile;
      out.push(`\nprofile of walflow during ${label}: ${cpu.file} (${formatNumber(cpu.totalMs)} ms)`);
      out.push('  self time by module:');
      for (const spot of cpu.modules.slice(0, 12)) out.push(`    ${formatNumber(spot.selfPercent).padStart(6)} %  ${spot.frame}`);
      out.push('  self time by function:');
      for (const spot of cpu.functions) out.push(`    ${formatNumber(spot.selfPercent).padStart(6)} %  ${spot.frame}`);
      out.push('  pg_stat_statements, by total execution time:');
      for (const statement of statements) {
        out.push(`    ${formatNumber(statement.totalMs).padStart(9)} ms  ${String(statement.calls).padStart(7)} calls  ${formatNumber(statement.meanMs).padStart(7)} ms/call  ${statement.query.slice(0, 140)}`);
      }
    }
  }
  return out.join('\n');
}
