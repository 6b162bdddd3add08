import type { DeadLetter } from '@walflow/executor';
import type { DeadRun } from '../../dead-runs.js';
import { html, type SafeHtml } from '../html.js';
import { csrfField, layout, type Frame } from './layout.js';

const RAW_PREVIEW = 200;

/**
 * Dead letters and dead runs, each table one form: a row's own buttons act on that row (`one`), the buttons
 * below the table on the ticked rows (`ids`).
 */
export function deadPage(frame: Omit<Frame, 'title' | 'section'>, letters: readonly DeadLetter[], runs: readonly DeadRun[]): SafeHtml {
  const { principal } = frame;
  const controls = (kind: 'dead-letters' | 'runs', id: string) =>
    html`<button name="one" value="${id}" formaction="/console/${kind}/retry">Retry</button> <button name="one" value="${id}" formaction="/console/${kind}/discard">Discard</button>`;
  const bulk = (kind: 'dead-letters' | 'runs') =>
    html`<p><button formaction="/console/${kind}/retry">Retry selected</button> <button formaction="/console/${kind}/discard">Discard selected</button></p>`;
  const body = html`
<h2>Dead letters</h2>
<p>Outbox rows that could not become events. Retry puts a row back into the outbox under its original id.</p>
${
  letters.length === 0
    ? html`<p>No open dead letters.</p>`
    : html`<form method="post" action="/console/dead-letters/retry">${csrfField(principal)}
<table id="dead-letters"><tr><th></th><th>parked at</th><th>tenant</th><th>type</th><th>code</th><th>reason</th><th>row</th><th></th></tr>
${letters.map((letter) => {
  const raw = JSON.stringify(letter.raw);
  return html`<tr><td><input type="checkbox" name="ids" value="${letter.id}" aria-label="select ${letter.id}"></td><td class="mono">${letter.createdAt.toISOString()}</td>
<td>${letter.tenantId}</td><td>${letter.eventType ?? '?'}</td><td>${letter.code}</td><td>${letter.reason}</td>
<td class="mono">${raw.length > RAW_PREVIEW ? `${raw.slice(0, RAW_PREVIEW - 1)}…` : raw}</td><td>${controls('dead-letters', letter.id)}</td></tr>`;
})}</table>${bulk('dead-letters')}</form>`
}
<h2>Dead runs</h2>
<p>Runs that used up their attempts. Retry queues one again with a fresh allowance of attempts; actions that already succeeded are not repeated.</p>
${
  runs.length === 0
    ? html`<p>No dead runs.</p>`
    : html`<form method="post" action="/console/runs/retry">${csrfField(principal)}
<table id="dead-runs"><tr><th></th><th>finished at</th><th>workflow</th><th>tenant</th><th>event</th><th>attempts</th><th>last error</th><th></th></tr>
${runs.map(
  (run) => html`<tr data-run="${run.id}"><td><input type="checkbox" name="ids" value="${run.id}" aria-label="select ${run.id}"></td><td class="mono">${run.finishedAt?.toISOString() ?? ''}</td>
<td>${run.workflow ?? '(deleted workflow)'}</td><td>${run.tenantId}</td><td><a href="/console/events/${run.eventId}#run-${run.id}">${run.eventType}</a></td>
<td>${run.attempts}</td><td>${run.lastError ?? ''}</td><td>${controls('runs', run.id)}</td></tr>`,
)}</table>${bulk('runs')}</form>`
}`;
  return layout({ ...frame, title: 'Dead letters and dead runs', section: 'dead' }, body);
}
