import { html, type SafeHtml } from './html.js';

const WIDTH = 560;
const HEIGHT = 120;
const LEFT = 64;
const BOTTOM = 18;

export interface ChartOptions {
  title: string;
  points: readonly { at: number; value: number }[];
  /** The right edge; the chart spans `windowMs` before it. */
  now: number;
  windowMs: number;
  format: (value: number) => string;
}

/** A line chart as inline SVG: no script, no library, a few hundred bytes per hour of samples. */
export function lineChart({ title, points, now, windowMs, format }: ChartOptions): SafeHtml {
  const plotWidth = WIDTH - LEFT;
  const plotHeight = HEIGHT - BOTTOM;
  const max = Math.max(0, ...points.map((point) => point.value));
  const top = max > 0 ? max : 1;
  const x = (at: number): number => LEFT + Math.max(0, Math.min(1, 1 - (now - at) / windowMs)) * plotWidth;
  const y = (value: number): number => plotHeight - (value / top) * (plotHeight - 4);
  const line = points.map((point) => `${x(point.at).toFixed(1)},${y(point.value).toFixed(1)}`).join(' ');
  const latest = points.at(-1);
  return html`<figure class="chart">
  <figcaption>${title}: <strong>${latest === undefined ? 'no samples yet' : format(latest.value)}</strong></figcaption>
  <svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${title} over the last hour">
    <line x1="${LEFT}" y1="${plotHeight}" x2="${WIDTH}" y2="${plotHeight}" stroke="#999" stroke-width="1"/>
    <line x1="${LEFT}" y1="0" x2="${LEFT}" y2="${plotHeight}" stroke="#999" stroke-width="1"/>
    <text x="${LEFT - 4}" y="10" font-size="10" text-anchor="end">${format(max)}</text>
    <text x="${LEFT - 4}" y="${plotHeight}" font-size="10" text-anchor="end">0</text>
    <text x="${LEFT}" y="${HEIGHT - 4}" font-size="10">−${Math.round(windowMs / 60_000)} min</text>
    <text x="${WIDTH}" y="${HEIGHT - 4}" font-size="10" text-anchor="end">now</text>
    ${points.length > 1 ? html`<polyline points="${line}" fill="none" stroke="#2a6fb0" stroke-width="1.5"/>` : ''}
    ${points.length === 1 && latest ? html`<circle cx="${x(latest.at)}" cy="${y(latest.value)}" r="2" fill="#2a6fb0"/>` : ''}
  </svg>
</figure>`;
}
