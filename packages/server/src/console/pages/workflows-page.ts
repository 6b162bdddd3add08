import { isUnreadable, type ReadWorkflow } from '@walflow/executor';
import type { ReplaySummary } from '../../replay.js';
import { html, type SafeHtml } from '../html.js';
import { failureRate, type WorkflowActivity } from '../workflow-activity.js';
import { badge, csrfField, layout, type Frame } from './layout.js';

export interface BacktestInput {
  from: string;
  to: string;
  workflow: string;
  type: string;
  tenant: string;
}

export interface WorkflowsData {
  workflows: readonly ReadWorkflow[];
  activity: ReadonlyMap<string, WorkflowActivity>;
  backtest: BacktestInput;
  /** The dry run just done, if any. */
  result?: ReplaySummary | undefined;
}

const NO_ACTIVITY: WorkflowActivity = { lastRuns: [], runs: {}, decisions: {} };

export function workflowsPage(frame: Omit<Frame, 'title' | 'section'>, data: WorkflowsData): SafeHtml {
  const { principal } = frame;
  const body = html`
${data.result === undefined ? '' : backtestResult(data.result)}
<table id="workflows"><tr><th>workflow</th><th>status</th><th>trigger</th><th>last runs (24 h)</th><th>failure rate (24 h)</th><th>decisions (24 h)</th><th></th></tr>
${data.workflows.map((workflow) => {
  const activity = data.activity.get(workflow.id) ?? NO_ACTIVITY;
  const rate = failureRate(activity.runs);
  const decisions = Object.entries(activity.decisions);
  const verb = workflow.status === 'active' ? 'pause' : 'resume';
  return html`<tr data-workflow="${workflow.name}"><td><strong>${workflow.name}</strong>${principal?.tenant === null ? html`<br><small>tenant ${workflow.tenantId}</small>` : ''}<br><small>version ${workflow.version}</small></td>
<td>${badge(workflow.status)}${workflow.pausedReason === null ? '' : html`<br><small class="paused-reason">${workflow.pausedReason}</small>`}</td>
<td><code>${workflow.triggerEvent}</code>${
    isUnreadable(workflow)
      ? html`<br><small class="unreadable">its stored definition cannot be read (apply it again): ${workflow.unreadable}</small>`
      : workflow.definition.condition === undefined
        ? ''
        : html`<br><small class="mono">${workflow.definition.condition}</small>`
  }</td>
<td>${activity.lastRuns.length === 0 ? 'none' : activity.lastRuns.map((run) => html`<a href="/console/events/${run.eventId}#run-${run.id}" title="${run.createdAt}">${badge(run.status)}</a> `)}</td>
<td>${rate === null ? '—' : `${(rate * 100).toFixed(1)} %`}</td>
<td>${decisions.length === 0 ? 'none' : decisions.map(([outcome, count]) => html`${badge(outcome)} ${count} `)}</td>
<td>${
    workflow.status === 'disabled'
      ? ''
      : html`<form method="post" action="/console/workflows/${verb}" class="inline">${csrfField(principal)}
<input type="hidden" name="tenant" value="${workflow.tenantId}"><input type="hidden" name="name" value="${workflow.name}">
<button name="verb" value="${verb}">${verb === 'pause' ? 'Pause' : 'Resume'}</button></form>`
  }</td></tr>`;
})}
</table>
${data.workflows.length === 0 ? html`<p>No workflows.</p>` : ''}
<h2>Backtest</h2>
<p>Runs the recorded events committed in [from, to) through the current workflows in a transaction that is rolled back, and counts what each would have decided. Nothing is created.</p>
<form method="post" action="/console/workflows/backtest"><fieldset>${csrfField(principal)}
  <label>From <input name="from" value="${data.backtest.from}" required size="14"></label>
  <label>to <input name="to" value="${data.backtest.to}" required size="14"></label>
  <label>Workflow <select name="workflow"><option value="">all</option>
    ${data.workflows.map((workflow) => html`<option value="${workflow.id}" ${data.backtest.workflow === workflow.id ? 'selected' : ''}>${workflow.name}${principal?.tenant === null ? ` (${workflow.tenantId})` : ''}</option>`)}
  </select></label>
  <label>Type <input name="type" value="${data.backtest.type}" placeholder="(any)" maxlength="200"></label>
  ${principal?.tenant === null ? html`<label>Tenant <input name="tenant" value="${data.backtest.tenant}" placeholder="(any)" maxlength="200"></label>` : ''}
  <button>Run backtest</button>
</fieldset></form>`;
  return layout({ ...frame, title: 'Workflows', section: 'workflows' }, body);
}

function backtestResult(result: ReplaySummary): SafeHtml {
  const workflows = Object.entries(result.workflows);
  return html`<section id="backtest-result"><h2>Backtest result</h2>
<p>${result.events} events replayed as ${result.replayId}; nothing was created.</p>
${
  workflows.length === 0
    ? html`<p>No workflow would have been considered.</p>`
    : html`<table><tr><th>workflow</th><th>would decide</th></tr>
${workflows.map(([workflow, counts]) => html`<tr><td>${workflow}</td><td>${Object.entries(counts).map(([outcome, count]) => html`${badge(outcome)} ${count} `)}</td></tr>`)}</table>`
}</section>`;
}
