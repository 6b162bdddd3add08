import { formatLsn, SqlState, sqlStateOf, WalflowError, type BatchDispatcher, type DispatchBatch, type DispatchResult, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { chainOf, chainReplayOf, decide, decideUnreadable, type Decision, type GuardRequest } from './decide.js';
import { decidedInReplay, insertEvents, lockReplayedEvents, writeOutcomes, type Considered, type Outcomes } from './dispatch-statements.js';
import { boundedKey } from './expressions/cel-value-text.js';
import { applyGuards, firedDecision, ranInChain, usesGuardState } from './guard-state.js';
import { batchOutboxRows, waitForWriters } from './outbox-writers.js';
import { parkReusedEventIds } from './reused-event-ids.js';
import { CurrentWorkflows, WorkflowIndex } from './workflow-index.js';
import { isUnreadable, type StoredWorkflow } from './workflow-store.js';

export interface DispatcherOptions {
  db: Kysely<WalflowDatabase>;
  /** The replication slot whose checkpoint the batches advance. */
  slotName: string;
  logger: Logger;
  /** Events this many workflow runs away from an application write trigger nothing. @default 8 */
  maxDepth?: number;
  /** Told after a batch that queued runs has committed, so workers can start at once. */
  onRunsQueued?: (count: number) => void;
}

/** How a replay differs from live dispatch. */
export interface ReplayScope {
  /** Decisions and runs are recorded under it; guard state and the chain guard are the replay's own. */
  replayId: string;
  /** Fire every match: no cooldown, no rate limit. */
  ignoreGuards?: boolean;
  /** Only these workflows. */
  workflowIds?: ReadonlySet<string>;
  /** Rolled back in the end: its runs never need their events, which it therefore leaves unlocked. */
  dryRun?: boolean;
  /**
   * These workflows instead of the stored ones (a backtest of documents not applied, whose runs and decisions,
   * rolled back, may name ids no workflow holds).
   */
  candidates?: readonly StoredWorkflow[];
}

export interface ReplayResult {
  /** Events of the page replayed: not those pruned since the page was read, which are passed over. */
  events: number;
  decisions: { workflowId: string; workflow: string; tenantId: string; outcome: string }[];
  runsQueued: number;
  /** Pairs (event, workflow) of the scope decided under the replay id before: they get nothing new. */
  alreadyDecided: number;
}

/**
 * Records a batch of committed events in ONE transaction: the events (idempotently, on their id and commit
 * time), a decision for every (new event, matching workflow), a run for each that fired, the dead letters; it
 * deletes the batch's outbox rows and advances the slot's checkpoint. A redelivered event is a no-op: guards
 * are evaluated and decisions written only for events recorded for the first time.
 */
export class Dispatcher implements BatchDispatcher {
  private readonly workflows = new CurrentWorkflows();
  private readonly maxDepth: number;

  constructor(private readonly options: DispatcherOptions) {
    this.maxDepth = options.maxDepth ?? 8;
  }

  async dispatch(batch: DispatchBatch): Promise<DispatchResult> {
    let result: DispatchResult;
    try {
      result = await this.record(batch, 'fail');
    } catch (error) {
      // Only the part of a large transaction recorded before a crash (no checkpoint covers it; this batch's
      // does, once written), or rows left behind by hand or by pruning (an event deleted, its run kept, the
      // event delivered again), can make an event beyond the checkpoint, or a newly recorded event's run or
      // decision, exist already; the batch is written again around them.
      if (sqlStateOf(error) !== SqlState.uniqueViolation) throw error;
      this.options.logger.warn({ err: error }, 'part of the batch was recorded before; recording the batch again, keeping what exists');
      result = await this.record(await parkReusedEventIds(this.options.db, batch), 'skip');
    }
    if (result.runsQueued > 0) this.options.onRunsQueued?.(result.runsQueued);
    return result;
  }

  /**
   * One attempt at a batch. Recording its events and deciding what needs no guard state overlap the batch
   * before; guard reads and the outcomes (with the checkpoint) wait for that batch's commit.
   */
  private async record(batch: DispatchBatch, onExisting: Outcomes['onExisting']): Promise<DispatchResult> {
    const afterPreviousRecorded = waitOnce(batch.previous?.recorded);
    const afterPrevious = waitOnce(batch.previous?.committed);
    try {
      // READ COMMITTED whatever the database's default: waitForWriters needs each statement's own snapshot.
      const result = await this.options.db.transaction().setIsolationLevel('read committed').execute(async (trx) => {
        await afterPreviousRecorded();
        const outbox = batchOutboxRows(batch);
        const { fresh, workflowRevision, writersRunning } = await insertEvents(
          trx,
          {
            events: batch.events,
            recovered: batch.recovered ?? false,
            writers: outbox.writers,
            slotName: this.options.slotName,
            checkpoint: batch.checkpoint,
          },
          onExisting,
        );
        batch.progress?.markRecorded();
        // The outbox rows are deleted below, by a statement that must see them all. A snapshot that does not see
        // every writer committed may miss a pause committed before them too, so then the workflows are read
        // again once it does: the first event committed after a pause is decided inactive.
        let index: WorkflowIndex;
        if (writersRunning === 0) index = await this.workflows.at(trx, workflowRevision);
        else {
          await waitForWriters(trx, outbox.writers);
          index = await this.workflows.at(trx);
        }
        const considered = await this.consider(trx, fresh, index, null, afterPrevious);
        const newLetters = await this.insertDeadLetters(trx, batch);
        await afterPrevious();
        const runsQueued = await writeOutcomes(trx, {
          considered,
          replayId: null,
          // Only what this batch recorded: a redelivered row's was deleted when it was first recorded, and a row
          // under its id now is another transaction's (a dead letter retried under its id), not yet recorded.
          recordedOutboxIds: fresh.length === batch.events.length && newLetters.length === batch.parked.length ? outbox.ids : [...fresh.map((event) => event.id), ...newLetters],
          checkpoint: batch.checkpoint && { slotName: this.options.slotName, end: batch.checkpoint },
          onExisting,
        });
        const decisions: Record<string, number> = {};
        for (const item of considered) decisions[item.decision.outcome] = (decisions[item.decision.outcome] ?? 0) + 1;
        return { recorded: fresh.length, recordedEvents: fresh, duplicates: batch.events.length - fresh.length, runsQueued, parked: batch.parked.length, decisions };
      });
      batch.progress?.markCommitted();
      return result;
    } catch (error) {
      batch.progress?.markFailed(error);
      throw error;
    }
  }

  /**
   * Runs recorded events through the current workflows again, inside the caller's transaction (a dry run
   * rolls it back). Decisions and runs carry the replay id, so replaying the same range twice adds nothing.
   */
  async replay(trx: Transaction<WalflowDatabase>, page: EventEnvelope[], scope: ReplayScope): Promise<ReplayResult> {
    const index = scope.candidates === undefined ? await this.workflows.at(trx) : WorkflowIndex.of(scope.candidates);
    // Events pruned since the page was read are passed over: no run may be queued without its event.
    const present = scope.dryRun ? null : await lockReplayedEvents(trx, page);
    const events = present === null ? page : page.filter((event) => present.has(event.id));
    const decided = await decidedInReplay(trx, events, scope.replayId);
    const considered = await this.consider(trx, events, index, { ...scope, decided }, waitOnce(undefined));
    const runsQueued = await writeOutcomes(trx, { considered, replayId: scope.replayId, onExisting: 'skip' });
    const workflowOf = (pair: string): string => pair.slice(pair.indexOf('|') + 1);
    return {
      events: events.length,
      decisions: considered.map((item) => ({ workflowId: item.workflow.id, workflow: item.workflow.name, tenantId: item.workflow.tenantId, outcome: item.decision.outcome })),
      runsQueued,
      alreadyDecided: [...decided].filter((pair) => scope.workflowIds?.has(workflowOf(pair)) ?? true).length,
    };
  }

  /**
   * Decides, in commit order, for every (new event, matching workflow): guards see the effect of earlier
   * events of the same batch, exactly as if they had come one by one, and of earlier batches, because the
   * first read of guard state waits for `afterPrevious`.
   */
  private async consider(
    trx: Transaction<WalflowDatabase>,
    events: EventEnvelope[],
    index: WorkflowIndex,
    replay: (ReplayScope & { decided: ReadonlySet<string> }) | null,
    afterPrevious: () => Promise<void>,
  ): Promise<Considered[]> {
    const considered: Considered[] = [];
    const firedInBatch = new Set<string>();
    const replayId = replay?.replayId ?? null;
    for (const event of events) {
      for (const workflow of index.match(event.tenantId, event.type)) {
        if (replay?.workflowIds && !replay.workflowIds.has(workflow.id)) continue;
        if (replay?.decided.has(`${event.id}|${workflow.id}`)) continue;
        if (isUnreadable(workflow)) {
          considered.push({ event, workflow, decision: decideUnreadable(workflow) });
          continue;
        }
        const verdict = decide(workflow, event, { maxDepth: this.maxDepth, ignoreGuards: replay?.ignoreGuards === true });
        if (verdict.kind === 'decided') {
          considered.push({ event, workflow, decision: verdict.decision });
          continue;
        }
        const chain = chainOf(event);
        // Told apart as ranInChain tells runs apart: by the chain's world (a replay's or the live one) and the aggregate.
        const link = `${workflow.id}\0${chain}\0${linkPart(replayId ?? chainReplayOf(event))}\0${linkPart(event.aggregateType)}\0${linkPart(event.aggregateId)}`;
        // Only a caused event can loop; the lookup (and its wait for the batch before) happens only then.
        const ranBefore =
          chain !== event.id &&
          (firedInBatch.has(link) || (await afterPrevious().then(() => ranInChain(trx, workflow.id, chain, event, replayId))));
        if (ranBefore) {
          considered.push({
            event,
            workflow,
            decision: {
              outcome: 'loop_blocked',
              reason: 'workflow already ran in this causal chain for the same aggregate',
              detail: { correlationId: chain, causationId: event.metadata.causationId ?? null, aggregateType: event.aggregateType, aggregateId: event.aggregateId },
            },
          });
          continue;
        }
        let decision: Decision;
        if (replay?.ignoreGuards) decision = { outcome: 'fired', reason: 'replayed with guards ignored', detail: { guardsIgnored: true } };
        else if (!usesGuardState(workflow)) decision = firedDecision(workflow, verdict.guards.bypassed);
        else {
          await afterPrevious();
          decision = await applyGuards(trx, workflow, event, replayId === null ? verdict.guards : inReplay(verdict.guards, replayId));
        }
        if (decision.outcome === 'fired') firedInBatch.add(link);
        considered.push({ event, workflow, decision, concurrencyKey: verdict.guards.concurrencyKey });
      }
    }
    return considered;
  }

  /** Inserts the batch's dead letters; returns the outbox ids of those not inserted before. */
  private async insertDeadLetters(trx: Transaction<WalflowDatabase>, batch: DispatchBatch): Promise<string[]> {
    if (batch.parked.length === 0) return [];
    const inserted = await trx
      .insertInto('walflow.dead_letters')
      .values(
        batch.parked.map((row) => ({
          outbox_id: row.outboxId,
          tenant_id: row.tenantId,
          event_type: row.eventType,
          code: row.code,
          reason: row.reason,
          raw: JSON.stringify(row.raw),
          commit_lsn: formatLsn(row.commit.commitLsn),
          committed_at: row.commit.committedAt,
        })),
      )
      // A letter per (row, commit) (migration 0031): a retried letter that fails again, or another row parked
      // under a reused id, is a later commit and a letter of its own; a redelivery of the same commit (after a
      // restart) leaves the letter as the operator left it.
      .onConflict((conflict) => conflict.columns(['outbox_id', 'commit_lsn']).doNothing())
      .returning('outbox_id')
      .execute();
    for (const row of batch.parked) {
      this.options.logger.warn({ outboxId: row.outboxId, code: row.code, reason: row.reason }, 'outbox row parked as a dead letter');
    }
    return inserted.flatMap((row) => (row.outbox_id === null ? [] : [row.outbox_id]));
  }
}

/**
 * Waits for a step of the batch before the first time it is called, and at once after that. A failure of that
 * batch becomes `previous_batch_failed`: this batch must then record nothing.
 */
function waitOnce(previous: Promise<void> | undefined): () => Promise<void> {
  let waited: Promise<void> | undefined;
  return () =>
    (waited ??=
      previous === undefined
        ? Promise.resolve()
        : previous.then(
            () => undefined,
            (error: unknown) => {
              throw new WalflowError('previous_batch_failed', 'the batch before this one failed, so this one records nothing', { cause: error });
            },
          ));
}

/** A replay keeps guard state of its own: its cooldowns and windows never touch live ones. */
function inReplay(guards: GuardRequest, replayId: string): GuardRequest {
  return {
    ...guards,
    cooldownKey: boundedKey(`replay:${replayId}:${guards.cooldownKey}`),
    rateLimitKeys: guards.rateLimitKeys.map((key) => boundedKey(`replay:${replayId}:${key}`)),
  };
}

/** Text or null, written so that no other text or null reads the same between NULs (PostgreSQL text holds none). */
function linkPart(value: string | null): string {
  return value === null ? 'n' : `s${value}`;
}
