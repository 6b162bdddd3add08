import type { ConsumerStatus } from '@walflow/cdc';
import type { listAudit } from '../../audit.js';
import { formatBytes, type HealthReport } from '../../health-report.js';
import { html, type SafeHtml } from '../html.js';
import type { Sample } from '../overview-samples.js';
import type { RunCounts } from '../run-counts.js';
import { lineChart } from '../svg-chart.js';
import { badge, layout, type Frame } from './layout.js';

type AuditRow = Awaited<ReturnType<typeof listAudit>>[number];

export interface OverviewData {
  report: HealthReport | null;
  consumer: ConsumerStatus;
  samples: readonly Sample[];
  counts: RunCounts;
  /** Recent operator actions; only an operator of every tenant sees them. */
  audit: readonly AuditRow[] | null;
  now: number;
}

const HOUR_MS = 3_600_000;

export function overviewPage(frame: Omit<Frame, 'title' | 'section'>, data: OverviewData): SafeHtml {
  const { report, consumer, samples, counts, now } = data;
  const chart = (title: string, value: (sample: Sample) => number, format: (value: number) => string): SafeHtml =>
    lineChart({ title, points: samples.map((sample) => ({ at: sample.at, value: value(sample) })), now, windowMs: HOUR_MS, format });
  const body = html`
<p>Role ${badge(consumer.role)} · consumer ${badge(consumer.state)} since ${consumer.since.toISOString()}
${report === null ? html` · <strong>no health report yet</strong>` : html` · health ${badge(report.status)} at ${report.at}`}</p>
<div class="charts">
  ${chart('Events recorded per second', (sample) => sample.eventsPerSecond, (value) => `${value.toFixed(value < 10 ? 2 : 0)}/s`)}
  ${chart('Replication lag (bytes)', (sample) => sample.lagBytes, formatBytes)}
  ${chart('Replication lag (seconds)', (sample) => sample.lagSeconds, (value) => `${value.toFixed(1)} s`)}
</div>
<h2>Runs</h2>
<table><tr><th>queued</th><th>running</th><th>dead</th><th>succeeded (24 h)</th><th>cancelled (24 h)</th><th>open dead letters</th></tr>
<tr><td>${counts.runs.queued}</td><td>${counts.runs.running}</td><td><a href="/console/dead">${counts.runs.dead}</a></td>
<td>${counts.runs.succeeded}</td><td>${counts.runs.cancelled}</td><td><a href="/console/dead">${counts.openDeadLetters}</a></td></tr></table>
<h2>Health checks</h2>
${
  report === null
    ? html`<p>The first health report is being computed.</p>`
    : html`<table><tr><th>check</th><th>state</th><th>message</th></tr>
${report.checks.map((check) => html`<tr><td>${check.name}</td><td>${badge(check.state)}</td><td>${check.message}</td></tr>`)}</table>
<p>Slot ${report.slot === null ? 'missing' : html`<code>${report.slot.name}</code> ${report.slot.active ? 'active' : 'inactive'}, wal_status ${report.slot.walStatus ?? 'unknown'}`}
· retained ${formatBytes(report.lag.retainedBytes)} · last event committed ${report.lastEventAt ?? 'never'}</p>`
}
${
  data.audit === null
    ? ''
    : html`<h2>Recent operator actions</h2>
${
  data.audit.length === 0
    ? html`<p>None in the last 7 days.</p>`
    : html`<table><tr><th>at</th><th>who</th><th>action</th><th>target</th></tr>
${data.audit.map((entry) => html`<tr><td>${entry.at.toISOString()}</td><td>${entry.actor}</td><td>${entry.action}</td><td>${entry.target ?? ''}</td></tr>`)}</table>`
}`
}`;
  return layout({ ...frame, title: 'Overview', section: 'overview' }, body);
}
