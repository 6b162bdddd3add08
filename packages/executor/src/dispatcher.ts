import {
  formatLsn,
  type BatchDispatcher,
  type DispatchBatch,
  type DispatchResult,
  type EventEnvelope,
  type WalflowDatabase,
} from '@walflow/core';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { chainOf, decide, type Decision, type GuardRequest, type IndexedWorkflow } from './decide.js';
import { applyGuards, ranInChain } from './guard-state.js';
import { WorkflowIndex } from './workflow-index.js';

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

interface Considered {
  event: EventEnvelope;
  workflow: IndexedWorkflow;
  decision: Decision;
  /** The run's concurrency key, for workflows that were handed on to the guards. */
  concurrencyKey?: string;
}

/** How a replay differs from live dispatch. */
export interface ReplayScope {
  /** Decisions and runs are recorded under it; guard state and the chain guard are the replay's own. */
  replayId: string;
  /** Fire every match: no cooldown, no rate limit. */
  ignoreGuards?: boolean;
  /** Only these workflows. */
  workflowIds?: ReadonlySet<string>;
}

export interface ReplayResult {
  decisions: { workflowId: string; workflow: string; outcome: string }[];
  runsQueued: number;
}

/**
 * Records a batch of committed events in ONE transaction: the events (idempotently, on their id and commit
 * time), a decision for every (new event, matching workflow), a run for each that fired, the dead letters; it
 * deletes the batch's outbox rows and advances the slot's checkpoint. A redelivered event is a no-op: guards
 * are evaluated and decisions written only for events recorded for the first time.
 */
export class Dispatcher implements BatchDispatcher {
  private readonly index = new WorkflowIndex();
  private readonly maxDepth: number;

  constructor(private readonly options: DispatcherOptions) {
    this.maxDepth = options.maxDepth ?? 8;
  }

  async dispatch(batch: DispatchBatch): Promise<DispatchResult> {
    const result = await this.options.db.transaction().execute(async (trx) => {
      const fresh = await this.insertEvents(trx, batch.events, batch.recovered ?? false);
      await this.index.refresh(trx);
      const considered = await this.consider(trx, fresh, null);
      const runsQueued = await this.insertDecisionsAndRuns(trx, considered, null);
      const decisions: Record<string, number> = {};
      for (const item of considered) decisions[item.decision.outcome] = (decisions[item.decision.outcome] ?? 0) + 1;
      await this.insertDeadLetters(trx, batch);
      await this.deleteOutboxRows(trx, batch);
      if (batch.checkpoint) {
        await trx
          .updateTable('walflow.consumer_state')
          .set({
            checkpoint_lsn: formatLsn(batch.checkpoint.endLsn),
            last_commit_at: batch.checkpoint.committedAt,
            updated_at: sql`now()`,
          })
          .where('slot_name', '=', this.options.slotName)
          .where((eb) => eb.or([eb('checkpoint_lsn', 'is', null), eb('checkpoint_lsn', '<', sql<string>`${formatLsn(batch.checkpoint!.endLsn)}::pg_lsn`)]))
          .execute();
      }
      return { recorded: fresh.length, duplicates: batch.events.length - fresh.length, runsQueued, parked: batch.parked.length, decisions };
    });
    if (result.runsQueued > 0) this.options.onRunsQueued?.(result.runsQueued);
    return result;
  }

  /**
   * Runs recorded events through the current workflows again, inside the caller's transaction (a dry run
   * rolls it back). Decisions and runs carry the replay id, so replaying the same range twice adds nothing.
   */
  async replay(trx: Transaction<WalflowDatabase>, events: EventEnvelope[], scope: ReplayScope): Promise<ReplayResult> {
    await this.index.refresh(trx);
    const considered = await this.consider(trx, events, scope);
    const runsQueued = await this.insertDecisionsAndRuns(trx, considered, scope.replayId);
    return {
      decisions: considered.map((item) => ({ workflowId: item.workflow.id, workflow: item.workflow.name, outcome: item.decision.outcome })),
      runsQueued,
    };
  }

  /**
   * Decides, in commit order, for every (new event, matching workflow): guards see the effect of earlier
   * events of the same batch, exactly as if they had come one by one.
   */
  private async consider(trx: Transaction<WalflowDatabase>, events: EventEnvelope[], replay: ReplayScope | null): Promise<Considered[]> {
    const considered: Considered[] = [];
    const firedInBatch = new Set<string>();
    const replayId = replay?.replayId ?? null;
    for (const event of events) {
      for (const workflow of this.index.match(event.tenantId, event.type)) {
        if (replay?.workflowIds && !replay.workflowIds.has(workflow.id)) continue;
        const verdict = decide(workflow, event, { maxDepth: this.maxDepth });
        if (verdict.kind === 'decided') {
          considered.push({ event, workflow, decision: verdict.decision });
          continue;
        }
        const chain = chainOf(event);
        const link = `${workflow.id}|${chain}|${event.aggregateType ?? ''}|${event.aggregateId ?? ''}`;
        if (chain !== event.id && (firedInBatch.has(link) || (await ranInChain(trx, workflow.id, chain, event, replayId)))) {
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
        const decision = replay?.ignoreGuards
          ? { outcome: 'fired' as const, reason: 'replayed with guards ignored', detail: { guardsIgnored: true } }
          : await applyGuards(trx, workflow, event, replayId === null ? verdict.guards : inReplay(verdict.guards, replayId));
        if (decision.outcome === 'fired') firedInBatch.add(link);
        considered.push({ event, workflow, decision, concurrencyKey: verdict.guards.concurrencyKey });
      }
    }
    return considered;
  }

  /** Inserts the events; returns those that were not recorded before. */
  private async insertEvents(trx: Transaction<WalflowDatabase>, events: EventEnvelope[], recovered: boolean): Promise<EventEnvelope[]> {
    if (events.length === 0) return [];
    const columns = {
      id: [] as string[],
      type: [] as string[],
      tenant: [] as string[],
      aggregateType: [] as (string | null)[],
      aggregateId: [] as (string | null)[],
      payload: [] as string[],
      metadata: [] as string[],
      committedAt: [] as string[],
      commitLsn: [] as string[],
      position: [] as number[],
      xid: [] as string[],
    };
    for (const event of events) {
      columns.id.push(event.id);
      columns.type.push(event.type);
      columns.tenant.push(event.tenantId);
      columns.aggregateType.push(event.aggregateType);
      columns.aggregateId.push(event.aggregateId);
      columns.payload.push(JSON.stringify(event.payload));
      columns.metadata.push(JSON.stringify(event.metadata));
      columns.committedAt.push(event.committedAt);
      columns.commitLsn.push(formatLsn(event.commitLsn));
      columns.position.push(event.position);
      columns.xid.push(event.xid);
    }
    // One statement for the whole batch: unnest turns column arrays into rows.
    const { rows } = await sql<{ id: string }>`
      INSERT INTO walflow.events
        (id, event_type, tenant_id, aggregate_type, aggregate_id, payload, metadata, committed_at, commit_lsn, tx_position, xid, recovered)
      SELECT *, ${recovered} FROM unnest(
        ${columns.id}::uuid[], ${columns.type}::text[], ${columns.tenant}::text[], ${columns.aggregateType}::text[],
        ${columns.aggregateId}::text[], ${columns.payload}::jsonb[], ${columns.metadata}::jsonb[],
        ${columns.committedAt}::timestamptz[], ${columns.commitLsn}::pg_lsn[], ${columns.position}::int[], ${columns.xid}::bigint[])
      ON CONFLICT DO NOTHING
      RETURNING id`.execute(trx);
    const inserted = new Set(rows.map((row) => row.id));
    return inserted.size === events.length ? events : events.filter((event) => inserted.has(event.id));
  }

  private async insertDecisionsAndRuns(trx: Transaction<WalflowDatabase>, considered: Considered[], replayId: string | null): Promise<number> {
    if (considered.length === 0) return 0;
    const fired = considered.filter((item) => item.decision.outcome === 'fired');
    const runIds = new Map<string, string>();
    if (fired.length > 0) {
      const { rows } = await sql<{ id: string; workflow_id: string; event_id: string }>`
        INSERT INTO walflow.workflow_runs
          (workflow_id, workflow_version, tenant_id, event_id, event_committed_at, event_type, aggregate_type, aggregate_id,
           commit_lsn, tx_position, max_attempts, correlation_id, ordered, replay_id, concurrency_key)
        SELECT * FROM unnest(
          ${fired.map((item) => item.workflow.id)}::uuid[], ${fired.map((item) => item.workflow.version)}::int[],
          ${fired.map((item) => item.event.tenantId)}::text[], ${fired.map((item) => item.event.id)}::uuid[],
          ${fired.map((item) => item.event.committedAt)}::timestamptz[], ${fired.map((item) => item.event.type)}::text[],
          ${fired.map((item) => item.event.aggregateType)}::text[], ${fired.map((item) => item.event.aggregateId)}::text[],
          ${fired.map((item) => formatLsn(item.event.commitLsn))}::pg_lsn[], ${fired.map((item) => item.event.position)}::int[],
          ${fired.map((item) => item.workflow.definition.retry.maxAttempts)}::int[], ${fired.map((item) => chainOf(item.event))}::uuid[],
          ${fired.map((item) => item.workflow.definition.ordering === 'aggregate')}::boolean[], ${fired.map(() => replayId)}::text[],
          ${fired.map((item) => item.concurrencyKey ?? '')}::text[])
        ON CONFLICT DO NOTHING
        RETURNING id, workflow_id, event_id`.execute(trx);
      for (const row of rows) runIds.set(`${row.workflow_id}/${row.event_id}`, row.id);
    }
    await sql`
      INSERT INTO walflow.decisions
        (workflow_id, workflow_version, tenant_id, event_id, event_committed_at, outcome, reason, detail, run_id, replay_id)
      SELECT * FROM unnest(
        ${considered.map((item) => item.workflow.id)}::uuid[], ${considered.map((item) => item.workflow.version)}::int[],
        ${considered.map((item) => item.event.tenantId)}::text[], ${considered.map((item) => item.event.id)}::uuid[],
        ${considered.map((item) => item.event.committedAt)}::timestamptz[], ${considered.map((item) => item.decision.outcome)}::text[],
        ${considered.map((item) => item.decision.reason)}::text[], ${considered.map((item) => JSON.stringify(item.decision.detail))}::jsonb[],
        ${considered.map((item) => runIds.get(`${item.workflow.id}/${item.event.id}`) ?? null)}::uuid[], ${considered.map(() => replayId)}::text[])
      ON CONFLICT DO NOTHING`.execute(trx);
    return runIds.size;
  }

  private async insertDeadLetters(trx: Transaction<WalflowDatabase>, batch: DispatchBatch): Promise<void> {
    if (batch.parked.length === 0) return;
    await trx
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
      // A dead letter retried by an operator that fails again is open again, with the new reason.
      .onConflict((conflict) =>
        conflict.column('outbox_id').doUpdateSet({
          code: (eb) => eb.ref('excluded.code'),
          reason: (eb) => eb.ref('excluded.reason'),
          raw: sql`excluded.raw`,
          commit_lsn: (eb) => eb.ref('excluded.commit_lsn'),
          committed_at: (eb) => eb.ref('excluded.committed_at'),
          created_at: sql`now()`,
          resolved_at: null,
          resolution: null,
        }),
      )
      .execute();
    for (const row of batch.parked) {
      this.options.logger.warn({ outboxId: row.outboxId, code: row.code, reason: row.reason }, 'outbox row parked as a dead letter');
    }
  }

  private async deleteOutboxRows(trx: Transaction<WalflowDatabase>, batch: DispatchBatch): Promise<void> {
    const ids = batch.events.map((event) => event.id);
    for (const row of batch.parked) if (row.outboxId !== null) ids.push(row.outboxId);
    if (ids.length === 0) return;
    await sql`DELETE FROM walflow.outbox WHERE id = ANY(${ids}::uuid[])`.execute(trx);
  }
}

/** A replay keeps guard state of its own: its cooldowns and windows never touch live ones. */
function inReplay(guards: GuardRequest, replayId: string): GuardRequest {
  return {
    ...guards,
    cooldownKey: `replay:${replayId}:${guards.cooldownKey}`,
    rateLimitKeys: guards.rateLimitKeys.map((key) => `replay:${replayId}:${key}`),
  };
}

