import { setTimeout as sleep } from 'node:timers/promises';
import { eventTypeCondition, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { RECORDING_APPLICATION_NAME } from './database.js';

/** One recorded event as `walflow events list` and the console's event list show it. */
export interface ListedEvent {
  id: string;
  event_type: string;
  tenant_id: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  /** ISO-8601 with the database's microseconds. */
  committed_at: string;
  payload: unknown;
}

/** A listed event and when walflow recorded it: the position `followEvents` resumes from. */
export interface RecordedEvent extends ListedEvent {
  /** ISO-8601 with the database's microseconds, so resuming after it skips nothing and repeats nothing. */
  received_at: string;
}

export interface EventFilter {
  /** An event type, or a prefix such as `policy.*`. */
  type?: string | undefined;
  tenantId?: string | undefined;
}

/** Where following the log resumes: after this (received_at, id). */
export interface EventCursor {
  receivedAt: string;
  id: string;
}

const LISTED_COLUMNS = ['id', 'event_type', 'tenant_id', 'aggregate_type', 'aggregate_id', 'payload'] as const;

function filtered(db: Kysely<WalflowDatabase>, filter: EventFilter) {
  let query = db.selectFrom('walflow.events');
  if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
  if (filter.type !== undefined) {
    const condition = eventTypeCondition(filter.type);
    query = query.where('event_type', condition.operator, condition.value);
  }
  return query;
}

/** Events committed in [since, until), newest first. */
export async function listEvents(db: Kysely<WalflowDatabase>, filter: EventFilter & { since: Date; until?: Date | undefined; limit: number }): Promise<ListedEvent[]> {
  let query = filtered(db, filter)
    .select([...LISTED_COLUMNS, sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at')])
    .where('committed_at', '>=', filter.since)
    .orderBy('committed_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.limit);
  if (filter.until !== undefined) query = query.where('committed_at', '<', filter.until);
  return query.execute();
}

/** The position at a time: following from it shows the events recorded from then on. */
function eventCursorAt(time: Date | string): EventCursor {
  return { receivedAt: typeof time === 'string' ? time : time.toISOString(), id: '00000000-0000-0000-0000-000000000000' };
}

/**
 * Where following the recorded events starts: now in the database's clock (or `notBefore`, if earlier), or
 * earlier still when a transaction of walflow's recording sessions (RECORDING_APPLICATION_NAME) began before. An event's received_at is
 * the start of the transaction that recorded it, so a batch that began before the follower and commits after it
 * would otherwise never be shown.
 */
export async function followStart(db: Kysely<WalflowDatabase>, notBefore?: Date): Promise<EventCursor> {
  const { rows } = await sql<{ at: string }>`
    SELECT to_json(least(now(), ${notBefore?.toISOString() ?? null}::timestamptz,
                         (SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() AND application_name = ${RECORDING_APPLICATION_NAME}))) #>> '{}' AS at`.execute(db);
  return eventCursorAt(rows[0]!.at);
}

/**
 * followStart for a follower already under way (FollowOptions.safePoint), or null when a recording session's
 * transaction cannot be seen (a role without pg_read_all_stats sees another role's sessions without their
 * xact_start): then nothing says how far back an open batch may lie, and the follower stays where it is.
 */
export async function followSafePoint(db: Kysely<WalflowDatabase>): Promise<EventCursor | null> {
  const { rows } = await sql<{ hidden: boolean }>`
    SELECT EXISTS (SELECT FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name = ${RECORDING_APPLICATION_NAME} AND state IS NULL) AS hidden`.execute(db);
  return rows[0]!.hidden ? null : followStart(db);
}

/**
 * Events recorded after the cursor, in the order walflow recorded them. Ordered and resumed by
 * (received_at, id): a dispatcher batch shares one received_at, so the id breaks ties and a batch larger than
 * `limit` is read in pages instead of repeating its first page.
 */
export async function eventsRecordedAfter(db: Kysely<WalflowDatabase>, cursor: EventCursor, filter: EventFilter, limit: number): Promise<RecordedEvent[]> {
  return filtered(db, filter)
    .select([...LISTED_COLUMNS, sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at'), sql<string>`to_json(received_at) #>> '{}'`.as('received_at')])
    // The plain range lets the index on received_at narrow the scan; the row comparison is exact.
    .where('received_at', '>=', sql<Date>`${cursor.receivedAt}::timestamptz`)
    .where(sql<boolean>`(received_at, id) > (${cursor.receivedAt}::timestamptz, ${cursor.id}::uuid)`)
    .orderBy('received_at')
    .orderBy('id')
    .limit(limit)
    .execute();
}

export interface FollowOptions {
  /** Reads the next page after the cursor (through whatever scope the caller needs). */
  read: (cursor: EventCursor) => Promise<RecordedEvent[]>;
  from: EventCursor;
  /**
   * A position nothing not yet read can be recorded before (followStart), taken before each read: when the read
   * finds nothing after the cursor, the cursor moves up to it. Without it, a filter that matches nothing kept the
   * cursor where it began, and every read scanned everything recorded since.
   */
  safePoint: () => Promise<EventCursor | null>;
  intervalMs: number;
  signal: AbortSignal;
  onEvents: (events: RecordedEvent[]) => void | Promise<void>;
}

/** Follows the event log until `signal` aborts: `walflow events tail` and the console's live list. */
export async function followEvents(options: FollowOptions): Promise<void> {
  let cursor = options.from;
  while (!options.signal.aborted) {
    // Before the read: a transaction recording before it, still open, holds it back; one committed is read.
    const safe = await options.safePoint();
    const events = await options.read(cursor);
    const last = events.at(-1);
    if (last !== undefined) {
      cursor = { receivedAt: last.received_at, id: last.id };
      await options.onEvents(events);
      continue; // a full page may have more behind it
    }
    if (safe !== null && Date.parse(safe.receivedAt) > Date.parse(cursor.receivedAt)) cursor = safe;
    await sleep(options.intervalMs, undefined, { signal: options.signal }).catch(() => undefined);
  }
}
