import { createHash, randomUUID } from 'node:crypto';
import { isUuid, WalflowError, type WalflowDatabase } from '@walflow/core';
import { candidateWorkflow, Dispatcher, type ReplayScope, type WorkflowPolicy } from '@walflow/executor';
import type { NatsSinkSettings } from '@walflow/nats-sink';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { isRelativeTime } from './parse-time.js';
import { prunedBefore } from './pruned-history.js';
import { countEvents, exactBound, exactRange, pagesOf } from './replay-range.js';
import { replayToSink } from './replay-to-sink.js';

export interface ReplayOptions {
  db: Kysely<WalflowDatabase>;
  logger: Logger;
  slotName: string;
  /** Half-open range of commit times: [from, to). */
  from: Date;
  to: Date;
  /** An event type, or a prefix such as `policy.*`. */
  type?: string | undefined;
  tenantId?: string | undefined;
  /** Only this workflow: its name or id. */
  workflow?: string | undefined;
  /** Names the replay; by default it is derived from the range and filters, so the same replay twice adds nothing. */
  replayId?: string | undefined;
  /**
   * The range as the operator typed it: the replay id is derived from a relative bound (`-2h`, `now`) as typed
   * rather than from the instant it came to, so the same command run again a minute later is the same replay,
   * and the events both ranges hold are not decided again. An absolute bound counts as its instant, however spelled,
   * and selects events to the microsecond it was typed with (`from` and `to` hold milliseconds only).
   */
  rangeAsTyped?: { from: string; to: string } | undefined;
  /** A fresh replay id: run the same range again on purpose. */
  again?: boolean | undefined;
  /** Decide, count and print; create nothing. */
  dryRun?: boolean | undefined;
  /** Fire every match: no cooldown, no rate limit. */
  ignoreGuards?: boolean | undefined;
  /** A workflow document that is not applied yet, evaluated in a dry run (a backtest). */
  workflowDefinition?: unknown;
  policy?: WorkflowPolicy | undefined;
  maxDepth?: number | undefined;
  /** Events older than this many days are gone: a range reaching further back is refused. */
  retentionDays: number;
  /**
   * The instant a relative range was read against (default: the current time). Retention is measured from the
   * same instant, so `--from -30d` with 30 days' retention is not refused for the moments in between.
   */
  now?: Date | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
  /** Told the replay's id once it is known, before the first page: whatever fails after may have committed pages. */
  onStart?: ((replayId: string) => void) | undefined;
  /**
   * Stops the replay before its next page once aborted, throwing the signal's reason. A dry run rolls back whole;
   * a replay keeps the pages it committed, and running it again goes on from there (its id skips them).
   */
  signal?: AbortSignal | undefined;
  /**
   * A dry run's statements are cancelled once this instant passes (the console's backtest): the signal stops a
   * replay between pages only, and one statement, such as the count of a long range, can outlast it.
   */
  statementDeadline?: Date | undefined;
  /** Re-publish the range to this JetStream sink instead of running workflows; message ids carry the replay id. */
  toSink?: NatsSinkSettings | undefined;
}

export interface ReplaySummary {
  replayId: string;
  dryRun: boolean;
  events: number;
  runsQueued: number;
  /** Pairs (event, workflow) decided under the replay id by an earlier run of it: skipped this time. */
  alreadyDecided: number;
  /** Per workflow name (with its tenant where tenants share the name): decision counts by outcome. */
  workflows: Record<string, Record<string, number>>;
  /** With toSink: messages JetStream stored, and those it already had from the same replay id. */
  sink?: { stream: string; published: number; duplicates: number };
}

class DryRunDone extends Error {}

/** What a replay is asked, checked before anything is read: the CLI checks it before it reads a workflow file. */
export interface ReplayRequest extends Pick<ReplayOptions, 'from' | 'to' | 'now' | 'retentionDays' | 'dryRun' | 'workflow' | 'ignoreGuards' | 'rangeAsTyped'> {
  withWorkflowFile: boolean;
  toSink: boolean;
}

/** Refuses, as config_invalid, a range that is empty or no longer kept, and options that do not go together. */
export function checkReplayRequest(request: ReplayRequest): void {
  const { from } = request;
  // Fixed-width UTC timestamps (exactRange): as strings, in time order.
  const { from: exactFrom, to: exactTo } = exactRange(request);
  if (!(exactFrom < exactTo)) throw new WalflowError('config_invalid', `the range is empty: --from ${exactFrom} is not before --to ${exactTo}`);
  const retainedSince = new Date((request.now ?? new Date()).getTime() - request.retentionDays * 86_400_000);
  if (from < retainedSince) {
    throw new WalflowError('config_invalid', `events before ${retainedSince.toISOString()} are no longer kept (retention ${request.retentionDays} days): replay a later range`);
  }
  if (request.withWorkflowFile && !request.dryRun) {
    throw new WalflowError('config_invalid', 'a workflow file is evaluated only in a dry run (--dry-run); apply it to replay for real');
  }
  if (request.withWorkflowFile && request.workflow !== undefined) {
    throw new WalflowError('config_invalid', 'a workflow file is the one workflow a backtest runs: it takes no --workflow');
  }
  if (request.toSink && (request.dryRun || request.workflow !== undefined || request.withWorkflowFile || request.ignoreGuards)) {
    throw new WalflowError('config_invalid', '--to-sink re-publishes events and runs no workflow: it takes no --workflow, --workflow-file, --dry-run or --ignore-guards');
  }
}

/**
 * Runs recorded events of a time range through the current workflows again, in commit order. Conditions and
 * guards see the events' commit times and guard state of the replay's own; runs carry the replay id and the
 * original event. A dry run does everything inside a transaction it rolls back.
 */
export async function replayRange(options: ReplayOptions): Promise<ReplaySummary> {
  const { db } = options;
  checkReplayRequest({ ...options, withWorkflowFile: options.workflowDefinition !== undefined, toSink: options.toSink !== undefined });
  // The retention the request was checked against is the caller's setting; a prune, by any window, is in the log.
  const pruned = await prunedBefore(db);
  if (pruned !== null && options.from < pruned) {
    throw new WalflowError('config_invalid', `events before ${pruned.toISOString()} were pruned (walflow audit list shows the prune): replay a later range`);
  }
  // A backtest's scope is the workflow in its file, which exists only in memory.
  const workflowScope = options.workflowDefinition === undefined ? await workflowIds(db, options) : undefined;
  // A dry run decides under an id of its own: it shows what the replay would decide from nothing, whatever ran
  // under the replay's id before (which a rerun would skip).
  const replayId = (options.replayId ?? derivedReplayId(options, workflowScope)) + (options.again ? `-${randomUUID().slice(0, 8)}` : '') + (options.dryRun ? '-dry-run' : '');
  options.onStart?.(replayId);
  if (options.toSink !== undefined) return replayToSink(options, options.toSink, replayId);
  const summary: ReplaySummary = { replayId, dryRun: options.dryRun ?? false, events: 0, runsQueued: 0, alreadyDecided: 0, workflows: {} };
  const dispatcher = new Dispatcher({ db, slotName: options.slotName, logger: options.logger, maxDepth: options.maxDepth });
  let total = 0;
  const decisionCounts = new Map<string, WorkflowDecisionCounts>();

  // Before each page of a dry run: its statements may run for the time left, not the whole time again.
  const boundStatements = async (trx: Transaction<WalflowDatabase>): Promise<void> => {
    if (options.statementDeadline === undefined) return;
    const left = Math.max(1, options.statementDeadline.getTime() - Date.now());
    await sql`SELECT set_config('statement_timeout', ${String(left)}, true)`.execute(trx);
  };
  const replayPages = async (trx: Transaction<WalflowDatabase> | null, scope: Pick<ReplayScope, 'workflowIds' | 'candidates'>): Promise<void> => {
    options.signal?.throwIfAborted();
    for await (const page of pagesOf(trx ?? db, options)) {
      options.signal?.throwIfAborted();
      const run = (t: Transaction<WalflowDatabase>) =>
        dispatcher.replay(t, page, { replayId, ignoreGuards: options.ignoreGuards ?? false, dryRun: options.dryRun ?? false, ...scope });
      // Read committed, as live dispatch: a page waiting for another that decides the same pairs reads, once that
      // one commits, what it decided, where a snapshot taken before the wait would fail to serialize.
      const result = trx ? await run(trx) : await db.transaction().setIsolationLevel('read committed').execute(run);
      summary.events += result.events;
      summary.runsQueued += result.runsQueued;
      summary.alreadyDecided += result.alreadyDecided;
      for (const decision of result.decisions) {
        // By tenant and name: a workflow deleted and applied again meanwhile counts as the one it replaced.
        const key = JSON.stringify([decision.tenantId, decision.workflow]);
        let counted = decisionCounts.get(key);
        if (counted === undefined) decisionCounts.set(key, (counted = { name: decision.workflow, tenantId: decision.tenantId, outcomes: {} }));
        counted.outcomes[decision.outcome] = (counted.outcomes[decision.outcome] ?? 0) + 1;
      }
      options.onProgress?.(summary.events, total);
      if (trx) await boundStatements(trx);
    }
  };

  if (options.dryRun) {
    await db
      .transaction()
      .setIsolationLevel('read committed')
      .execute(async (trx) => {
        await boundStatements(trx);
        total = await countEvents(trx, options);
        if (options.workflowDefinition === undefined) {
          await replayPages(trx, { workflowIds: workflowScope });
        } else {
          // The candidate is never written: its runs and decisions, rolled back, name an id nothing else holds.
          await replayPages(trx, { candidates: [await candidateWorkflow(trx, options.workflowDefinition, options.policy)] });
        }
        throw new DryRunDone();
      })
      .catch((error: unknown) => {
        if (!(error instanceof DryRunDone)) throw error;
      });
    summary.runsQueued = 0;
  } else {
    total = await countEvents(db, options);
    await replayPages(null, { workflowIds: workflowScope });
  }
  summary.workflows = byWorkflowLabel([...decisionCounts.values()]);
  return summary;
}

interface WorkflowDecisionCounts {
  name: string;
  tenantId: string;
  outcomes: Record<string, number>;
}

/**
 * Counts keyed by workflow name; a name that workflows of several tenants share is told apart by its tenant. Counts
 * whose labels still meet (a workflow named like another's label) are added up rather than one dropped.
 */
function byWorkflowLabel(workflows: WorkflowDecisionCounts[]): Record<string, Record<string, number>> {
  const tenantsOfName = new Map<string, number>();
  for (const workflow of workflows) tenantsOfName.set(workflow.name, (tenantsOfName.get(workflow.name) ?? 0) + 1);
  // A Map, not an object literal: a workflow may be named `__proto__`.
  const labelled = new Map<string, Record<string, number>>();
  for (const workflow of workflows) {
    const label = (tenantsOfName.get(workflow.name) ?? 0) > 1 ? `${workflow.name} (tenant ${workflow.tenantId})` : workflow.name;
    const counts = labelled.get(label);
    if (counts === undefined) labelled.set(label, { ...workflow.outcomes });
    else for (const [outcome, count] of Object.entries(workflow.outcomes)) counts[outcome] = (counts[outcome] ?? 0) + count;
  }
  return Object.fromEntries(labelled);
}

/**
 * The same replay however it is spelled: a relative bound as typed, an absolute one as its instant, the workflow
 * as the ids its name or id resolved to.
 */
function derivedReplayId(options: ReplayOptions, workflowIds: ReadonlySet<string> | undefined): string {
  // An absolute bound to the microsecond only where it was typed finer than the millisecond: the ids of replays
  // run before bounds were read to the microsecond stay as they were.
  const bound = (typed: string | undefined, instant: Date): string => {
    if (typed !== undefined && isRelativeTime(typed)) return typed.trim();
    const exact = exactBound(typed, instant);
    return exact.endsWith('000Z') ? instant.toISOString() : exact;
  };
  const range = [bound(options.rangeAsTyped?.from, options.from), bound(options.rangeAsTyped?.to, options.to)];
  const workflows = workflowIds === undefined ? null : [...workflowIds].sort();
  // A re-publication is another replay than running workflows over the same range.
  const key = JSON.stringify([...range, options.type ?? null, options.tenantId ?? null, workflows, options.ignoreGuards ?? false, ...(options.toSink === undefined ? [] : ['sink'])]);
  return `replay-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

async function workflowIds(db: Kysely<WalflowDatabase>, options: ReplayOptions): Promise<ReadonlySet<string> | undefined> {
  if (options.workflow === undefined) return undefined;
  const isId = isUuid(options.workflow);
  let query = db.selectFrom('walflow.workflows').select('id').where(isId ? 'id' : 'name', '=', options.workflow);
  if (options.tenantId !== undefined) query = query.where('tenant_id', '=', options.tenantId);
  const rows = await query.execute();
  if (rows.length === 0) throw new WalflowError('not_found', `no workflow ${options.workflow}`);
  return new Set(rows.map((row) => row.id));
}
