import { inTransaction, isJsonObject, SqlState, sqlStateOf, WalflowError, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

export interface DeadLetter {
  id: string;
  outboxId: string | null;
  tenantId: string;
  eventType: string | null;
  code: string;
  reason: string;
  raw: unknown;
  createdAt: Date;
  resolvedAt: Date | null;
  resolution: string | null;
}

export interface DeadLetterFilter {
  tenantId?: string;
  includeResolved?: boolean;
}

function filtered(db: Kysely<WalflowDatabase>, filter: DeadLetterFilter) {
  let query = db.selectFrom('walflow.dead_letters');
  if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
  if (!filter.includeResolved) query = query.where('resolved_at', 'is', null);
  return query;
}

/** The newest `limit` (100 unless told) dead letters the filter selects. */
export async function listDeadLetters(db: Kysely<WalflowDatabase>, filter: DeadLetterFilter & { limit?: number } = {}): Promise<DeadLetter[]> {
  const rows = await filtered(db, filter).selectAll().orderBy('created_at', 'desc').limit(filter.limit ?? 100).execute();
  return rows.map((row) => ({
    id: row.id,
    outboxId: row.outbox_id,
    tenantId: row.tenant_id,
    eventType: row.event_type,
    code: row.code,
    reason: row.reason,
    raw: row.raw,
    createdAt: row.created_at,
    resolvedAt: row.resolved_at,
    resolution: row.resolution,
  }));
}

/** How many dead letters the filter selects: what a limited list leaves out. */
export async function countDeadLetters(db: Kysely<WalflowDatabase>, filter: DeadLetterFilter = {}): Promise<number> {
  const row = await filtered(db, filter).select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Puts a parked row back into the outbox, under its original id, so it flows through the WAL again (after the
 * catalog, a workflow or the data was fixed). If it fails again it is parked again, open, with the new reason.
 * A row parked because another event had its id (`event_id_reused`) goes back under a new id. A row its own
 * commit recorded after all is refused (refuseIfRecordedAfterAll).
 */
export async function retryDeadLetter(db: Kysely<WalflowDatabase>, id: string): Promise<{ outboxId: string }> {
  return inTransaction(db, async (trx) => {
    const letter = await openLetter(trx, id);
    const row = outboxRowFrom(letter.raw, letter.outbox_id);
    if (letter.code !== 'event_id_reused') await refuseIfRecordedAfterAll(trx, id, row.id);
    const outboxId = letter.code === 'event_id_reused' ? sql`walflow.uuid_v7()` : sql`${row.id}::uuid`;
    const { rows } = await sql<{ id: string }>`
      INSERT INTO walflow.outbox (id, tenant_id, event_type, aggregate_type, aggregate_id, payload, metadata)
      VALUES (${outboxId}, ${row.tenantId}, ${row.type}, ${row.aggregateType}, ${row.aggregateId}, ${row.payload}::jsonb, ${row.metadata}::jsonb)
      RETURNING id`
      .execute(trx)
      .catch((error: unknown) => {
        // A row parked before the outbox's limits (0028) may break them: the outbox cannot take it back as it is.
        if (sqlStateOf(error) !== SqlState.checkViolation) throw error;
        throw new WalflowError('payload_invalid', `dead letter ${id} cannot go back into the outbox as it is (${(error as Error).message}): discard it, and emit a corrected event`);
      });
    await trx.updateTable('walflow.dead_letters').set({ resolved_at: sql`now()`, resolution: 'retried' }).where('id', '=', id).execute();
    return { outboxId: rows[0]!.id };
  });
}

export async function discardDeadLetter(db: Kysely<WalflowDatabase>, id: string): Promise<void> {
  await inTransaction(db, async (trx) => {
    await openLetter(trx, id);
    await trx.updateTable('walflow.dead_letters').set({ resolved_at: sql`now()`, resolution: 'discarded' }).where('id', '=', id).execute();
  });
}

/**
 * A transaction delivered again after a restart (PostgreSQL 15 forgets how far a slot was confirmed) brings its
 * parked row back, and once the cause is fixed (a workflow, the data a condition reads) the row is recorded as
 * an event while its letter stays open. The event's key is its commit time and id: the letter's commit holds
 * it. Retrying would commit the row again, a second event under the same id.
 */
async function refuseIfRecordedAfterAll(db: Kysely<WalflowDatabase>, letterId: string, outboxId: string): Promise<void> {
  // Joined in SQL: a Date read back would drop the commit time's microseconds.
  const recorded = await db
    .selectFrom('walflow.dead_letters as letter')
    .innerJoin('walflow.events as event', (join) => join.onRef('event.committed_at', '=', 'letter.committed_at'))
    .select('event.id')
    .where('letter.id', '=', letterId)
    .where('event.id', '=', outboxId)
    .executeTakeFirst();
  if (recorded) {
    throw new WalflowError('already_recorded', `dead letter ${letterId}: its row was recorded as event ${outboxId} when its transaction was delivered again; retrying would record it twice: discard the letter`);
  }
}

async function openLetter(db: Kysely<WalflowDatabase>, id: string) {
  const letter = await db.selectFrom('walflow.dead_letters').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
  if (!letter) throw new WalflowError('not_found', `no dead letter ${id}`);
  if (letter.resolved_at !== null) throw new WalflowError('not_found', `dead letter ${id} was already ${letter.resolution ?? 'resolved'}`);
  return letter;
}

/** Parked rows come in two shapes: an outbox row as wal2json printed it, or an event the dispatcher refused. */
function outboxRowFrom(raw: unknown, outboxId: string | null) {
  if (!isJsonObject(raw)) throw new WalflowError('payload_invalid', 'this dead letter has no row to retry');
  const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  const json = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value ?? {}));
  const id = outboxId ?? text(raw.id);
  const type = text(raw.event_type) ?? text(raw.type);
  if (id === null || type === null) throw new WalflowError('payload_invalid', 'this dead letter has no id or event type to retry with');
  return {
    id,
    type,
    tenantId: text(raw.tenant_id) ?? text(raw.tenantId) ?? 'default',
    aggregateType: text(raw.aggregate_type) ?? text(raw.aggregateType),
    aggregateId: text(raw.aggregate_id) ?? text(raw.aggregateId),
    // An event the dispatcher refused keeps its committed text beside the values read from it.
    payload: text(raw.payloadJson) ?? json(raw.payload),
    metadata: text(raw.metadataJson) ?? json(raw.metadata),
  };
}
