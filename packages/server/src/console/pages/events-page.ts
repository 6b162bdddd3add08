import type { ListedEvent } from '../../event-log.js';
import { html, type SafeHtml } from '../html.js';
import { layout, type Frame } from './layout.js';

/** The filter as typed, echoed back into the form. */
export interface EventsFilterInput {
  type: string;
  tenant: string;
  since: string;
  until: string;
  live: boolean;
}

/** One row of the list, the same whether rendered here or sent to the live list. */
export interface EventRowData {
  id: string;
  type: string;
  tenant: string;
  committedAt: string;
  aggregate: string;
  payload: string;
}

const PAYLOAD_PREVIEW = 160;

export function eventRowData(event: ListedEvent): EventRowData {
  const payload = JSON.stringify(event.payload);
  return {
    id: event.id,
    type: event.event_type,
    tenant: event.tenant_id,
    committedAt: event.committed_at,
    aggregate: event.aggregate_id === null ? '' : `${event.aggregate_type ?? ''}/${event.aggregate_id}`,
    payload: payload.length > PAYLOAD_PREVIEW ? `${payload.slice(0, PAYLOAD_PREVIEW - 1)}…` : payload,
  };
}

function row(data: EventRowData): SafeHtml {
  return html`<tr><td class="mono">${data.committedAt}</td><td><a href="/console/events/${data.id}">${data.type}</a></td><td>${data.tenant}</td><td>${data.aggregate}</td><td class="mono">${data.payload}</td></tr>`;
}

/**
 * The list with its filter. Live mode reads the same filter (type and tenant) from the stream: new events are
 * added on top as they are recorded, built with textContent, so a payload stays text.
 */
export function eventsPage(frame: Omit<Frame, 'title' | 'section'>, filter: EventsFilterInput, events: readonly ListedEvent[], limit: number, liveFrom?: string): SafeHtml {
  const fixedTenant = frame.principal?.tenant ?? null;
  const liveQuery = new URLSearchParams({ type: filter.type, tenant: filter.tenant, since: filter.since, until: filter.until, live: filter.live ? '' : '1' });
  const body = html`<form method="get" action="/console/events"><fieldset>
  <label>Type <input name="type" value="${filter.type}" placeholder="policy.* or policy.approved" maxlength="200"></label>
  ${fixedTenant === null ? html`<label>Tenant <input name="tenant" value="${filter.tenant}" maxlength="200"></label>` : ''}
  <label>Committed from <input name="since" value="${filter.since}" placeholder="-1h or ISO-8601" size="14"></label>
  <label>until <input name="until" value="${filter.until}" placeholder="(now)" size="14"></label>
  ${filter.live ? html`<input type="hidden" name="live" value="1">` : ''}
  <button>Filter</button>
  <a href="/console/events?${liveQuery.toString()}">${filter.live ? 'Stop live mode' : 'Live mode'}</a>
  ${filter.live ? html`<span id="live-state" class="live-on">live: connecting…</span>` : ''}
</fieldset></form>
<p>Newest first, at most ${limit}.${filter.live ? ' New events appear on top as walflow records them.' : ''}</p>
<table id="events"${liveFrom === undefined ? '' : html` data-from="${liveFrom}"`}><thead><tr><th>committed at</th><th>type</th><th>tenant</th><th>aggregate</th><th>payload</th></tr></thead>
<tbody>${events.map((event) => row(eventRowData(event)))}</tbody></table>
${events.length === 0 ? html`<p id="no-events">No events match.</p>` : ''}`;
  return layout({ ...frame, title: 'Events', section: 'events' }, body, filter.live ? LIVE_SCRIPT : undefined);
}

/**
 * Opens the stream with the page's own filter, from where the page's list was read, and prepends each recorded
 * event not listed already; the browser reconnects by itself.
 */
const LIVE_SCRIPT = `(() => {
  const page = new URLSearchParams(location.search);
  const table = document.getElementById('events');
  const query = new URLSearchParams({ type: page.get('type') || '', tenant: page.get('tenant') || '', from: table.dataset.from || '' });
  const state = document.getElementById('live-state');
  const body = table.querySelector('tbody');
  const source = new EventSource('/console/events/stream?' + query);
  source.onopen = () => { state.textContent = 'live: connected'; };
  source.onerror = () => { state.textContent = 'live: reconnecting…'; };
  source.addEventListener('recorded', (message) => {
    const event = JSON.parse(message.data);
    const href = '/console/events/' + encodeURIComponent(event.id);
    if ([...body.querySelectorAll('a')].some((listed) => listed.getAttribute('href') === href)) return;
    const row = document.createElement('tr');
    row.className = 'new';
    const cell = (text, className) => { const td = document.createElement('td'); td.textContent = text; if (className) td.className = className; return td; };
    const link = document.createElement('a');
    link.href = href;
    link.textContent = event.type;
    const typeCell = cell('');
    typeCell.append(link);
    row.append(cell(event.committedAt, 'mono'), typeCell, cell(event.tenant), cell(event.aggregate), cell(event.payload, 'mono'));
    body.prepend(row);
    document.getElementById('no-events')?.remove();
    while (body.rows.length > 500) body.deleteRow(-1);
  });
})();`;
