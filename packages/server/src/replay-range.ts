import { eventTypeCondition, formatLsn, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { eventRowColumns, toEventEnvelope } from '@walflow/executor';
import { sql, type Kysely } from 'kysely';
import { exactTimestamp, isRelativeTime } from './parse-time.js';
import type { ReplayOptions } from './replay.js';

/** Which recorded events a replay reads: committed in [from, to), of a tenant and an event type if given. */
export type ReplayedRange = Pick<ReplayOptions, 'from' | 'to' | 'rangeAsTyped' | 'tenantId' | 'type'>;

/** Events a page of a replay holds at most. */
export const REPLAY_PAGE_EVENTS = 500;

/** Commit order: commit time, commit LSN, position in the transaction, id. */
export const COMMIT_ORDER = sql`committed_at, commit_lsn, tx_position, id`;

/** After an event in commit order. */
export function afterInCommitOrder(committedAt: string, commitLsn: string, position: number, id: string) {
  return sql<boolean>`(${COMMIT_ORDER}) > (${committedAt}::timestamptz, ${commitLsn}::pg_lsn, ${position}, ${id}::uuid)`;
}

/** An absolute bound as typed, to the microsecond; otherwise the instant it came to (in the same six-digit form). */
export function exactBound(typed: string | undefined, instant: Date): string {
  return typed !== undefined && !isRelativeTime(typed) ? exactTimestamp(typed) : instant.toISOString().replace(/Z$/, '000Z');
}

/**
 * The range as fixed-width UTC timestamps with six digits of fraction, which compare as strings in time order: an
 * absolute bound to the microsecond it was typed with (`from` and `to` hold milliseconds only).
 */
export function exactRange(range: Pick<ReplayedRange, 'from' | 'to' | 'rangeAsTyped'>): { from: string; to: string } {
  return { from: exactBound(range.rangeAsTyped?.from, range.from), to: exactBound(range.rangeAsTyped?.to, range.to) };
}

/** The range's events, page by page in commit order. */
export async function* pagesOf(db: Kysely<WalflowDatabase>, range: ReplayedRange): AsyncGenerator<EventEnvelope[]> {
  let after: EventEnvelope | null = null;
  for (;;) {
    const page = await eventsAfter(db, range, after);
    if (page.length === 0) return;
    yield page;
    after = page[page.length - 1]!;
  }
}

/** The range's events, unordered and unselected: what a page of a replay, or its count, reads from. */
export function eventsInRange(db: Kysely<WalflowDatabase>, range: ReplayedRange) {
  const { from, to } = exactRange(range);
  let query = db
    .selectFrom('walflow.events')
    .where('committed_at', '>=', sql<Date>`${from}::timestamptz`)
    .where('committed_at', '<', sql<Date>`${to}::timestamptz`);
  if (range.tenantId !== undefined) query = query.where('tenant_id', '=', range.tenantId);
  if (range.type !== undefined) {
    const condition = eventTypeCondition(range.type);
    query = query.where('event_type', condition.operator, condition.value);
  }
  return query;
}

export async function countEvents(db: Kysely<WalflowDatabase>, range: ReplayedRange): Promise<number> {
  const row = await eventsInRange(db, range).select(sql<string>`count(*)`.as('n')).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** The next page in commit order: commit time, commit LSN, position in the transaction. */
async function eventsAfter(db: Kysely<WalflowDatabase>, range: ReplayedRange, after: EventEnvelope | null): Promise<EventEnvelope[]> {
  let query = eventsInRange(db, range)
    .select(eventRowColumns)
    .orderBy('committed_at')
    .orderBy('commit_lsn')
    .orderBy('tx_position')
    .orderBy('id')
    .limit(REPLAY_PAGE_EVENTS);
  if (after) query = query.where(afterInCommitOrder(after.committedAt, formatLsn(after.commitLsn), after.position, after.id));
  return (await query.execute()).map(toEventEnvelope);
}
