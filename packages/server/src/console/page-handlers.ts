import { isWalflowError } from '@walflow/core';
import { explainEvent, listDeadLetters, listWorkflows } from '@walflow/executor';
import { listAudit } from '../audit.js';
import { listDeadRuns } from '../dead-runs.js';
import { followStart, listEvents } from '../event-log.js';
import { parseTime } from '../parse-time.js';
import type { ReplaySummary } from '../replay.js';
import { frameOf, type ConsoleContext, type ConsoleRequest } from './console-context.js';
import type { SafeHtml } from './html.js';
import { HttpError, sendPage } from './http-request.js';
import { positionText } from './live-events.js';
import { deadPage } from './pages/dead-page.js';
import { eventPage } from './pages/event-page.js';
import { eventsPage, type EventsFilterInput } from './pages/events-page.js';
import { overviewPage, type OverviewData } from './pages/overview-page.js';
import { workflowsPage, type BacktestInput } from './pages/workflows-page.js';
import { eventsRecorded, lagOf } from './overview-samples.js';
import { runCounts } from './run-counts.js';
import { tenantHealth } from './tenant-health.js';
import { readInScope } from './tenant-scope.js';
import { workflowActivity } from './workflow-activity.js';

const DAY_MS = 86_400_000;
const EVENTS_SHOWN = 200;

/**
 * A text parameter of a query or form, trimmed; refused when longer than any legitimate value, or when it holds a
 * control character: no name, pattern or time has one, PostgreSQL refuses NUL in text, and names go into the
 * audit log.
 */
export function textParameter(parameters: URLSearchParams, name: string, maxLength = 200): string {
  const value = (parameters.get(name) ?? '').trim();
  if (value.length > maxLength) throw new HttpError(400, `${name} is longer than ${maxLength} characters`);
  if (/\p{Cc}/u.test(value)) throw new HttpError(400, `${name} contains a control character`);
  return value;
}

function reply(request: ConsoleRequest, page: SafeHtml, status = 200): void {
  sendPage(request.response, status, page, request.nonce);
}

export async function showOverview(context: ConsoleContext, request: ConsoleRequest): Promise<void> {
  const now = Date.now();
  const since = new Date(now - DAY_MS);
  const { tenant } = request.principal;
  const report = context.host.health();
  const { counts, health } = await readInScope(context.db, tenant, async (db) => {
    const counts = await runCounts(db, since);
    const health: OverviewData['health'] =
      tenant === null
        ? { scope: 'all', report, consumer: context.host.consumerStatus(), samples: context.samples.withCurrent(now, await eventsRecorded(context.host.metrics), lagOf(report)) }
        : { scope: 'tenant', health: await tenantHealth(db, { report, deadRuns: counts.runs.dead, thresholds: context.host.config.healthThresholds, since }) };
    return { counts, health };
  });
  // The audit log has no tenant: only an operator of every tenant sees it.
  const audit = tenant === null ? await listAudit(context.db, { since: new Date(now - 7 * DAY_MS), limit: 10 }) : null;
  reply(request, overviewPage(frameOf(request), { health, counts, audit, now }));
}

export async function showEvents(context: ConsoleContext, request: ConsoleRequest): Promise<void> {
  const query = request.url.searchParams;
  const filter: EventsFilterInput = {
    type: textParameter(query, 'type'),
    tenant: textParameter(query, 'tenant'),
    since: textParameter(query, 'since', 40) || '-1h',
    until: textParameter(query, 'until', 40),
    live: query.get('live') === '1',
  };
  const { tenant } = request.principal;
  try {
    const since = parseTime(filter.since);
    const until = filter.until === '' ? undefined : parseTime(filter.until);
    // Taken before the list is read: the stream the page opens starts there, so what is recorded in between is
    // on the page, in the stream, or in both (the page's script keeps one), never in neither.
    const liveFrom = filter.live ? await followStart(context.db) : undefined;
    const events = await readInScope(context.db, tenant, (db) =>
      listEvents(db, {
        since,
        until,
        type: filter.type || undefined,
        // A tenant's operator sees its tenant through row-level security; the field is not offered.
        tenantId: tenant === null ? filter.tenant || undefined : undefined,
        limit: EVENTS_SHOWN,
      }),
    );
    reply(request, eventsPage(frameOf(request), filter, events, EVENTS_SHOWN, liveFrom && positionText(liveFrom)));
  } catch (error) {
    if (!isWalflowError(error, 'config_invalid')) throw error;
    reply(request, eventsPage({ ...frameOf(request), notice: { kind: 'error', text: error.message } }, filter, [], EVENTS_SHOWN), 400);
  }
}

export async function showEvent(context: ConsoleContext, request: ConsoleRequest, eventId: string): Promise<void> {
  const explanation = await readInScope(context.db, request.principal.tenant, (db) => explainEvent(db, eventId));
  if (!explanation) throw new HttpError(404, `no recorded event ${eventId} (not yet recorded, parked as a dead letter, pruned, or not yours to see)`);
  reply(request, eventPage(frameOf(request), explanation));
}

const DEFAULT_BACKTEST: BacktestInput = { from: '-24h', to: 'now', workflow: '', type: '', tenant: '' };

/** The workflows with their last day's activity; after a backtest, its form as posted and its result. */
export async function showWorkflows(
  context: ConsoleContext,
  request: ConsoleRequest,
  backtest: { input: BacktestInput; result?: ReplaySummary } = { input: DEFAULT_BACKTEST },
  status = 200,
): Promise<void> {
  const since = new Date(Date.now() - DAY_MS);
  const { workflows, activity } = await readInScope(context.db, request.principal.tenant, async (db) => ({
    workflows: await listWorkflows(db),
    activity: await workflowActivity(db, since),
  }));
  reply(request, workflowsPage(frameOf(request), { workflows, activity, backtest: backtest.input, result: backtest.result }), status);
}

export async function showDead(context: ConsoleContext, request: ConsoleRequest): Promise<void> {
  const { letters, runs } = await readInScope(context.db, request.principal.tenant, async (db) => ({
    letters: await listDeadLetters(db),
    runs: await listDeadRuns(db),
  }));
  reply(request, deadPage(frameOf(request), letters, runs));
}
