import type { ConsumerStatus } from '@walflow/cdc';
import type { listAudit } from '../../audit.js';
import { formatBytes, type HealthReport } from '../../health-report.js';
import { html, type SafeHtml } from '../html.js';
import type { Sample } from '../overview-samples.js';
import type { RunCounts } from '../run-counts.js';
import type { TenantHealth } from '../tenant-health.js';
import { lineChart } from '../svg-chart.js';
import { badge, layout, type Frame } from './layout.js';

type AuditRow = Awaited<ReturnType<typeof listAudit>>[number];

/** The process's health, all of it: for an operator of every tenant. */
export interface ProcessHealthView {
  scope: 'all';
  report: HealthReport | null;
  consumer: ConsumerStatus;
  samples: readonly Sample[];
}

/** For an operator fixed to a tenant: only what is that tenant's. */
export interface TenantHealthView {
  scope: 'tenant';
  health: TenantHealth;
}

export interface OverviewData {
  health: ProcessHealthView | TenantHealthView;
  counts: RunCounts;
  /** Recent operator actions; only an operator of every tenant sees them. */
  audit: readonly AuditRow[] | null;
  now: number;
}

const HOUR_MS = 3_600_000;

export function overviewPage(frame: Omit<Frame, 'title' | 'section'>, data: OverviewData): SafeHtml {
  const { health, counts } = data;
  const body = html`
${health.scope === 'all' ? processState(health, data.now) : tenantState(health.health)}
<h2>Runs</h2>
<table><tr><th>queued</th><th>running</th><th>dead</th><th>succeeded (24 h)</th><th>cancelled (24 h)</th><th>open dead letters</th></tr>
<tr><td>${counts.runs.queued}</td><td>${counts.runs.running}</td><td><a href="/console/dead">${counts.runs.dead}</a></td>
<td>${counts.runs.succeeded}</td><td>${counts.runs.cancelled}</td><td><a href="/console/dead">${counts.openDeadLetters}</a></td></tr></table>
<h2>Health checks</h2>
${health.scope === 'all' ? processChecks(health.report) : tenantChecks(health.health)}
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

function processState({ report, consumer, samples }: ProcessHealthView, now: number): SafeHtml {
  const chart = (title: string, value: (sample: Sample) => number, format: (value: number) => string): SafeHtml =>
    lineChart({ title, points: samples.map((sample) => ({ at: sample.at, value: value(sample) })), now, windowMs: HOUR_MS, format });
  return html`<p>Role ${badge(consumer.role)} · consumer ${badge(consumer.state)} since ${consumer.since.toISOString()}
${report === null ? html` · <strong>no health report yet</strong>` : html` · health ${badge(report.status)} at ${report.at}`}</p>
<div class="charts">
  ${chart('Events recorded per second', (sample) => sample.eventsPerSecond, (value) => `${value.toFixed(value < 10 ? 2 : 0)}/s`)}
  ${chart('Replication lag (bytes)', (sample) => sample.lagBytes, formatBytes)}
  ${chart('Replication lag (seconds)', (sample) => sample.lagSeconds, (value) => `${value.toFixed(1)} s`)}
</div>`;
}

function processChecks(report: HealthReport | null): SafeHtml {
  if (report === null) return html`<p>The first health report is being computed.</p>`;
  return html`<table><tr><th>check</th><th>state</th><th>message</th></tr>
${report.checks.map((check) => html`<tr><td>${check.name}</td><td>${badge(check.state)}</td><td>${check.message}</td></tr>`)}</table>
<p>Slot ${report.slot === null ? 'missing' : html`<code>${report.slot.name}</code> ${report.slot.active ? 'active' : 'inactive'}, wal_status ${report.slot.walStatus ?? 'unknown'}`}
· retained ${formatBytes(report.lag.retainedBytes)} · last event committed ${report.lastEventAt ?? 'never'}</p>`;
}

function tenantState(health: TenantHealth): SafeHtml {
  return html`<p>Pipeline ${health.pipeline === null ? html`<strong>no health report yet</strong>` : badge(health.pipeline)} · health ${badge(health.status)}</p>`;
}

function tenantChecks(health: TenantHealth): SafeHtml {
  return html`<table><tr><th>check</th><th>state</th><th>message</th></tr>
<tr><td>pipeline</td><td>${health.pipeline === null ? 'unknown' : badge(health.pipeline)}</td><td>consumer, slot, lag and sink, shared by every tenant</td></tr>
${health.checks.map((check) => html`<tr><td>${check.name}</td><td>${badge(check.state)}</td><td>${check.message}</td></tr>`)}</table>
<p>Last event committed ${health.lastEventAt ?? 'none in the last 24 h'}</p>`;
}
