import {
  formatLsn,
  isDatabaseRefusingWork,
  isTransientDatabaseError,
  isWalflowError,
  type BatchDispatcher,
  type DispatchBatch,
  type DispatchResult,
  type EventEnvelope,
  type ParkedRow,
} from '@walflow/core';
import type { Logger } from 'pino';

/**
 * Keeps one bad event from stopping the stream. A batch that fails for a reason that is not transient is
 * tried again whole, then split in halves until the event that fails on its own is found; only that event is
 * parked in dead_letters, with the error, and everything else is recorded. Transient errors (connection,
 * shutdown, serialization, deadlock) park nothing: they go up, and the stream retries the batch. Nor do errors
 * in which the database refuses walflow's statements whatever the data (a privilege revoked, a column gone:
 * isDatabaseRefusingWork), which would park every event; the stream retries until the database is mended. Nor does the
 * failure of the batch before (`previous_batch_failed`), nor a writer's commit not yet visible to other
 * sessions (`commit_not_visible`: its event is fine, and parking it would keep it from its workflows). The
 * halves keep the batch's `previous` and `recovered`.
 */
export class PoisonIsolatingDispatcher implements BatchDispatcher {
  constructor(
    private readonly inner: BatchDispatcher,
    private readonly logger: Logger,
  ) {}

  async dispatch(batch: DispatchBatch): Promise<DispatchResult> {
    try {
      return await this.inner.dispatch(batch);
    } catch (error) {
      if (notTheBatchsFault(error)) throw error;
      this.logger.warn({ err: error, events: batch.events.length }, 'batch failed; trying it again, then event by event');
      return this.attempt(batch);
    }
  }

  private async attempt(batch: DispatchBatch): Promise<DispatchResult> {
    try {
      return await this.inner.dispatch(batch);
    } catch (error) {
      if (notTheBatchsFault(error)) throw error;
      return this.split(batch, error);
    }
  }

  private async split(batch: DispatchBatch, error: unknown): Promise<DispatchResult> {
    const [event, ...rest] = batch.events;
    if (event === undefined) throw error; // nothing left to blame: the failure is not an event's
    if (rest.length === 0) return this.park(event, batch, error);
    const middle = Math.ceil(batch.events.length / 2);
    // Only the half that holds the batch's end may move the checkpoint, and only after the first half.
    const first = await this.attempt({ ...batch, events: batch.events.slice(0, middle), parked: [], checkpoint: null });
    const second = await this.attempt({ ...batch, events: batch.events.slice(middle) });
    return {
      recorded: first.recorded + second.recorded,
      recordedEvents: [...first.recordedEvents, ...second.recordedEvents],
      duplicates: first.duplicates + second.duplicates,
      runsQueued: first.runsQueued + second.runsQueued,
      parked: first.parked + second.parked,
      decisions: mergeCounts(first.decisions, second.decisions),
    };
  }

  private async park(event: EventEnvelope, batch: DispatchBatch, error: unknown): Promise<DispatchResult> {
    const reason = `dispatching this event failed: ${error instanceof Error ? error.message : String(error)}`;
    this.logger.error({ err: error, eventId: event.id, type: event.type }, 'event parked as a dead letter');
    const parked: ParkedRow = {
      outboxId: event.id,
      tenantId: event.tenantId,
      eventType: event.type,
      code: 'dispatch_failed',
      reason,
      // With payloadJson and metadataJson, as committed: a retry puts them back exactly.
      raw: { ...event, commitLsn: formatLsn(event.commitLsn) },
      commit: { xid: event.xid, commitLsn: event.commitLsn, committedAt: event.committedAt },
    };
    return this.inner.dispatch({ ...batch, events: [], parked: [...batch.parked, parked] });
  }
}

function notTheBatchsFault(error: unknown): boolean {
  return (
    isTransientDatabaseError(error) ||
    isDatabaseRefusingWork(error) ||
    isWalflowError(error, 'previous_batch_failed') ||
    isWalflowError(error, 'commit_not_visible')
  );
}

function mergeCounts(a: DispatchResult['decisions'], b: DispatchResult['decisions']): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const counts of [a, b]) for (const [key, value] of Object.entries(counts ?? {})) merged[key] = (merged[key] ?? 0) + (value ?? 0);
  return merged;
}

