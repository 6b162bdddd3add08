import type { EventExplanation } from '@walflow/executor';
import { causalGraph } from '../causal-graph.js';
import { html, type SafeHtml } from '../html.js';
import { badge, layout, prettyJson, type Frame } from './layout.js';

/** The explain view: the same explanation `walflow explain` prints, as a page. */
export function eventPage(frame: Omit<Frame, 'title' | 'section'>, explanation: EventExplanation): SafeHtml {
  const { event, decisions, runs, causes, effects } = explanation;
  const body = html`
<table>
<tr><th>id</th><td class="mono">${event.id}</td><th>tenant</th><td>${event.tenantId}</td></tr>
<tr><th>committed at</th><td class="mono">${event.committedAt}</td><th>commit LSN</th><td class="mono">${event.commitLsn}</td></tr>
<tr><th>aggregate</th><td>${event.aggregateId === null ? '—' : `${event.aggregateType ?? ''}/${event.aggregateId}`}</td>
<th>recorded</th><td>${event.recovered ? 'recovered by walflow repair' : 'from the replication stream'}</td></tr>
</table>
<h2>Payload</h2>${prettyJson(event.payload)}
<h2>Metadata</h2>${prettyJson(event.metadata)}
<h2>Decisions</h2>
${
  decisions.length === 0
    ? html`<p>No workflow was considered: none of this tenant's workflows has a trigger matching ${event.type}.</p>`
    : html`<table id="decisions"><tr><th>workflow</th><th>version</th><th>decision</th><th>reason</th><th>detail</th><th>replay</th></tr>
${decisions.map(
  (decision) =>
    html`<tr><td>${decision.workflow}</td><td>${decision.version}</td><td>${badge(decision.outcome)}</td><td class="reason">${decision.reason}</td>
<td class="mono">${JSON.stringify(decision.detail)}</td><td>${decision.replayId ?? ''}</td></tr>`,
)}</table>`
}
<h2>Runs</h2>
${
  runs.length === 0
    ? html`<p>No runs.</p>`
    : html`<table id="runs"><tr><th>run</th><th>workflow</th><th>status</th><th>attempts</th><th>last error</th><th>actions</th></tr>
${runs.map(
  (run) =>
    html`<tr id="run-${run.id}"><td class="mono">${run.id}</td><td>${run.workflow}</td><td class="status">${badge(run.status)}</td><td>${run.attempts}</td>
<td>${run.lastError ?? ''}</td><td>${
      run.actions.length === 0
        ? '—'
        : html`<ol start="0">${run.actions.map(
            (action) => html`<li>${action.type}: ${badge(action.status)} after ${action.attempts} attempt(s)${action.error === null ? '' : html` — ${action.error}`}</li>`,
          )}</ol>`
    }</td></tr>`,
)}</table>`
}
<h2>Causal chain</h2>
${causes.length === 0 && effects.length === 0 ? html`<p>An application write; nothing came of it yet.</p>` : causalGraph(explanation)}`;
  return layout({ ...frame, title: `Event ${event.type}`, section: 'events' }, body);
}
