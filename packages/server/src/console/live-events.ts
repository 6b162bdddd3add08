import { isUuid, linkSignals } from '@walflow/core';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { eventsRecordedAfter, followEvents, followSafePoint, followStart, type EventCursor } from '../event-log.js';
import { parseTime } from '../parse-time.js';
import type { ConsoleContext, ConsoleRequest } from './console-context.js';
import { HttpError, securityHeaders } from './http-request.js';
import { textParameter } from './page-handlers.js';
import { eventRowData } from './pages/events-page.js';
import { readInScope } from './tenant-scope.js';

const POLL_MS = 500;
const KEEPALIVE_MS = 15_000;
const PAGE = 200;
/** How far back a reconnecting browser's Last-Event-ID may resume. */
const RESUME_WITHIN_MS = 15 * 60_000;
/**
 * Live streams open at once for one scope (a tenant, or all tenants): each polls the log through the console's
 * pool of four connections, so a token's holder opening streams without end would hold up every console page.
 */
export const MAX_LIVE_STREAMS = 16;

const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' };
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The live event list: Server-Sent Events, one `recorded` message per event as walflow records it, read with the
 * same query as `walflow events tail` and through the operator's scope. Each message's id is its position, so
 * a browser that reconnects (it does by itself) resumes where it was and misses nothing. The stream ends when
 * the client leaves, the console closes or the operator's session expires. At most MAX_LIVE_STREAMS are open for
 * one scope; the next is refused with 429.
 */
export async function streamEvents(context: ConsoleContext, request: ConsoleRequest): Promise<void> {
  const query = request.url.searchParams;
  const { tenant } = request.principal;
  const filter = { type: textParameter(query, 'type') || undefined, tenantId: tenant === null ? textParameter(query, 'tenant') || undefined : undefined };

  const { response } = request;
  // HEAD asks for the headers alone: there is nothing to follow for it.
  if (request.request.method === 'HEAD') {
    response.writeHead(200, { ...securityHeaders(null), ...STREAM_HEADERS });
    response.end();
    return;
  }
  const release = context.liveStreams.take(tenant ?? '');
  if (release === null) throw new HttpError(429, `${MAX_LIVE_STREAMS} live event streams are open for this scope already: close one`);
  try {
    await follow(context, request, filter);
  } finally {
    release();
  }
}

/** Sends what is recorded from the client's position (or now) on, until the stream ends. */
async function follow(context: ConsoleContext, request: ConsoleRequest, filter: { type: string | undefined; tenantId: string | undefined }): Promise<void> {
  const { response } = request;
  const { tenant, expiresAt, sessionId } = request.principal;
  const stop = new AbortController();
  // Before the first await: Node says once that a client left, and a client may leave while the start is read.
  response.on('close', () => stop.abort());
  if (response.destroyed) stop.abort();
  const sessionEnd = expiresAt === null ? undefined : setTimeout(() => stop.abort(), expiresAt - Date.now());
  const forgetSignOut = sessionId === null ? undefined : context.signedOut.onSignOut(sessionId, () => stop.abort());
  const linked = linkSignals([stop.signal, context.closing]);
  const signal = linked.signal;
  let keepalive: NodeJS.Timeout | undefined;
  try {
    // A reconnecting browser's last event, else where the page it belongs to read its list (`from`).
    const requested = resumedCursor(request.request.headers['last-event-id']) ?? resumedCursor(request.url.searchParams.get('from') ?? undefined);
    const from = resumedFrom(await followStart(context.db), requested);
    response.writeHead(200, { ...securityHeaders(null), ...STREAM_HEADERS });
    response.write('retry: 2000\n\n');
    keepalive = setInterval(() => response.write(': keepalive\n\n'), KEEPALIVE_MS);
    await followEvents({
      read: (cursor) => readInScope(context.db, tenant, (db) => eventsRecordedAfter(db, cursor, filter, PAGE)),
      from,
      safePoint: () => followSafePoint(context.db),
      intervalMs: POLL_MS,
      signal,
      onEvents: async (events) => {
        for (const event of events) {
          response.write(`id: ${positionText({ receivedAt: event.received_at, id: event.id })}\nevent: recorded\ndata: ${JSON.stringify(eventRowData(event))}\n\n`);
        }
        // A client that reads slower than the log is read (one resuming far back, say) is waited for: the
        // process then holds a page beyond what the socket holds, not the rest of the log.
        if (response.writableNeedDrain) await drained(response, signal);
      },
    });
  } catch (error) {
    if (!response.headersSent) throw error;
    // The browser reconnects and resumes from its last event id; the process goes on.
    context.host.logger.warn({ err: error }, 'console live event stream failed');
  } finally {
    linked.dispose();
    clearTimeout(sessionEnd);
    forgetSignOut?.();
    clearInterval(keepalive);
    if (response.headersSent) response.end();
  }
}

/** Resolves when the client has taken what the socket held, or when the stream ends. */
async function drained(response: ServerResponse, signal: AbortSignal): Promise<void> {
  await once(response, 'drain', { signal }).catch(() => undefined);
}

/**
 * Where a stream starts: at the browser's position when it reconnects, else at `start`. A browser reconnects within
 * seconds; a position older than RESUME_WITHIN_MS starts that long ago, so that one stream cannot make every read
 * scan the log from any point in the past, and one after the start (a clock ahead, an id made up) starts there.
 */
function resumedFrom(start: EventCursor, resumed: EventCursor | undefined): EventCursor {
  if (resumed === undefined) return start;
  const startAt = Date.parse(start.receivedAt);
  const resumedAt = Date.parse(resumed.receivedAt);
  if (resumedAt > startAt) return start;
  return resumedAt < startAt - RESUME_WITHIN_MS ? { receivedAt: new Date(startAt - RESUME_WITHIN_MS).toISOString(), id: start.id } : resumed;
}

/** A place in the live list as text: a message's id, and where a page read its list (`from`); resumedCursor reads it back. */
export function positionText(cursor: EventCursor): string {
  return `${cursor.receivedAt}|${cursor.id}`;
}

function resumedCursor(position: string | string[] | undefined): EventCursor | undefined {
  if (typeof position !== 'string') return undefined;
  const [receivedAt, id] = position.split('|');
  const valid = receivedAt !== undefined && id !== undefined && TIMESTAMP.test(receivedAt) && isExistingTime(receivedAt) && isUuid(id);
  return valid ? { receivedAt, id } : undefined;
}

/** A time of a day that exists: Date.parse takes 2026-02-30 for 2 March, which PostgreSQL refuses. */
function isExistingTime(text: string): boolean {
  try {
    parseTime(text);
    return true;
  } catch {
    return false;
  }
}
