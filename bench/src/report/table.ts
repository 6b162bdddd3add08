import type { FigureResult, Measurement } from './result.js';

/** A readable number: thousands separated, decimals only where they matter. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? '—' : '∞';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Ratios to three decimals: 0.849 beside a target of 0.85 must not read 0.85. */
function formatRatio(ratio: number): string {
  return Number.isFinite(ratio) && Math.abs(ratio) < 10 ? ratio.toFixed(3) : formatNumber(ratio);
}

function cells(measurement: Measurement): string[] {
  const { baseline, targets } = measurement;
  return [
    measurement.name,
    `${measurement.display ?? formatNumber(measurement.value)} ${measurement.unit}`,
    baseline === undefined ? '' : `${baseline.name}: ${formatNumber(baseline.value)} ${baseline.unit}`,
    measurement.ratio === undefined ? '' : formatRatio(measurement.ratio),
    (targets ?? []).map((goal) => `${goal.met ? 'met' : 'NOT MET'}: ${goal.description}`).join('; '),
  ];
}

/** The figures as one aligned table, each followed by how it was measured; then figure 6, memory. */
export function renderTable(figures: readonly FigureResult[]): string {
  const header = ['measurement', 'value', 'baseline (same run)', 'ratio', 'target'];
  const memoryRows = figures.flatMap((figure) =>
    figure.memory.map((entry): Measurement => ({ name: `walflow RSS at the end of ${entry.label} (peak ${formatNumber(entry.peakMiB)} MiB)`, value: entry.rssMiB, unit: 'MiB' })),
  );
  const sections: Array<{ title: string; rows: string[][]; notes: string[] }> = [
    ...figures.map((figure) => ({ title: `${figure.title} (${formatNumber(figure.seconds)} s)`, rows: figure.measurements.map(cells), notes: figure.notes })),
    ...(memoryRows.length === 0 ? [] : [{ title: '6 resident memory of the walflow process (VmRSS, /proc)', rows: memoryRows.map(cells), notes: [] }]),
  ];
  const widths = header.map((title, column) => Math.max(title.length, ...sections.flatMap((section) => section.rows.map((row) => row[column]!.length))));
  const line = (row: string[]): string => row.map((cell, column) => cell.padEnd(widths[column]!)).join(' │ ').trimEnd();
  const rule = widths.map((width) => '─'.repeat(width)).join('─┼─');
  const out = [line(header), rule];
  for (const section of sections) {
    out.push(section.title, ...section.rows.map(line), ...section.notes.map((note) => `    · ${note}`), rule);
  }
  return `${out.join('\n')}\n`;
}
