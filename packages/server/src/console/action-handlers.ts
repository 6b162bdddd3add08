import { isUuid, isWalflowError, linkSignals, SqlState, sqlStateOf, type WalflowDatabase } from '@walflow/core';
import { discardDeadLetter, retryDeadLetter, setWorkflowStatus } from '@walflow/executor';
import type { Kysely } from 'kysely';
import { recordAudit } from '../audit.js';
import { discardDeadRun, retryDeadRun } from '../dead-runs.js';
import { parseTime } from '../parse-time.js';
import { replayRange } from '../replay.js';
import type { ConsoleContext, ConsoleRequest } from './console-context.js';
import { HttpError } from './http-request.js';
import { showWorkflows, textParameter } from './page-handlers.js';
import type { BacktestInput } from './pages/workflows-page.js';
import { auditActor } from './session.js';
import { readInScope } from './tenant-scope.js';

/** What an action did, shown on the page it returns to. */
export interface ActionOutcome {
  returnTo: string;
  done: string;
}

export async function changeWorkflowStatus(context: ConsoleContext, request: ConsoleRequest, form: URLSearchParams, verb: 'pause' | 'resume'): Promise<ActionOutcome> {
  const name = textParameter(form, 'name');
  const { tenant: fixedTenant } = request.principal;
  const tenant = fixedTenant ?? textParameter(form, 'tenant');
  // The tenant is part of the key the update matches on, so an operator fixed to a tenant can only reach its own.
  if (fixedTenant !== null && textParameter(form, 'tenant') !== fixedTenant) throw new HttpError(404, `no workflow ${name}`);
  // The change and its audit entry commit together: an operator's change is never left unaudited.
  const change = await context.db
    .transaction()
    .execute(async (trx) => {
      const outcome = await setWorkflowStatus(trx, tenant, name, verb === 'pause' ? 'paused' : 'active');
      if (outcome === 'missing') throw new HttpError(404, `no workflow ${tenant}/${name}`);
      if (outcome === 'changed') await recordAudit(trx, { actor: auditActor(request.principal), action: `workflow.${verb}`, target: `${tenant}/${name}` });
      return outcome;
    })
    .catch((error: unknown) => {
      throw isWalflowError(error, 'workflow_disabled') ? new HttpError(409, error.message) : error;
    });
  const done = change === 'changed' ? `${verb === 'pause' ? 'Paused' : 'Resumed'} ${tenant}/${name}.` : `${tenant}/${name} was already ${verb === 'pause' ? 'paused' : 'active'}: nothing changed.`;
  return { returnTo: '/console/workflows', done };
}

/** The rows a form names: its row button's id, else the ticked ones. */
function selectedIds(form: URLSearchParams): string[] {
  const one = form.get('one');
  const ids = one === null ? form.getAll('ids') : [one];
  if (ids.length === 0) throw new HttpError(400, 'nothing selected');
  if (ids.length > 1000) throw new HttpError(400, 'at most 1000 rows at once');
  const bad = ids.find((id) => !isUuid(id));
  // The notice travels in a cookie: a long value is cut, not echoed whole into a header.
  if (bad !== undefined) throw new HttpError(400, `not an id: ${bad.length > 80 ? `${bad.slice(0, 80)}…` : bad}`);
  return [...new Set(ids)];
}

/**
 * Acts on rows one by one as the CLI does, each in one transaction with its audit entry. An operator fixed to a
 * tenant first reads the rows through their scope: what row-level security hides from them does not exist for them.
 */
async function actOnRows(
  context: ConsoleContext,
  request: ConsoleRequest,
  ids: string[],
  rows: { table: 'walflow.dead_letters' | 'walflow.workflow_runs'; noun: string; action: string },
  act: (db: Kysely<WalflowDatabase>, id: string) => Promise<void>,
): Promise<number> {
  const { tenant } = request.principal;
  if (tenant !== null) {
    const visible = await readInScope(context.db, tenant, (db) => visibleIds(db, rows.table, ids));
    const hidden = ids.find((id) => !visible.has(id));
    if (hidden !== undefined) throw new HttpError(404, `no ${rows.noun} ${hidden}`);
  }
  let done = 0;
  for (const id of ids) {
    try {
      await context.db.transaction().execute(async (trx) => {
        await act(trx, id);
        await recordAudit(trx, { actor: auditActor(request.principal), action: rows.action, target: id });
      });
    } catch (error) {
      const already = done === 0 ? '' : ` (${done} done before it)`;
      if (isWalflowError(error, 'not_found') || isWalflowError(error, 'payload_invalid') || isWalflowError(error, 'already_recorded')) throw new HttpError(409, `${error.message}${already}`);
      throw error;
    }
    done++;
  }
  return done;
}

async function visibleIds(db: Kysely<WalflowDatabase>, table: 'walflow.dead_letters' | 'walflow.workflow_runs', ids: string[]): Promise<Set<string>> {
  const rows = await db.selectFrom(table).select('id').where('id', 'in', ids).execute();
  return new Set(rows.map((row) => row.id));
}

export async function actOnDeadLetters(context: ConsoleContext, request: ConsoleRequest, form: URLSearchParams, verb: 'retry' | 'discard'): Promise<ActionOutcome> {
  const ids = selectedIds(form);
  const done = await actOnRows(context, request, ids, { table: 'walflow.dead_letters', noun: 'dead letter', action: `dead_letter.${verb}` }, async (db, id) => {
    if (verb === 'retry') await retryDeadLetter(db, id);
    else await discardDeadLetter(db, id);
  });
  return { returnTo: '/console/dead', done: `${verb === 'retry' ? 'Retried' : 'Discarded'} ${done} dead letter${done === 1 ? '' : 's'}.` };
}

export async function actOnDeadRuns(context: ConsoleContext, request: ConsoleRequest, form: URLSearchParams, verb: 'retry' | 'discard'): Promise<ActionOutcome> {
  const ids = selectedIds(form);
  const done = await actOnRows(context, request, ids, { table: 'walflow.workflow_runs', noun: 'dead run', action: `run.${verb}` }, (db, id) =>
    verb === 'retry' ? retryDeadRun(db, id) : discardDeadRun(db, id),
  );
  if (verb === 'retry') context.host.onRunsQueued();
  return { returnTo: '/console/dead', done: `${verb === 'retry' ? 'Queued again' : 'Discarded'} ${done} dead run${done === 1 ? '' : 's'}.` };
}

/**
 * Backtests at once, per scope and in all: each holds one of the console's four connections for up to
 * WALFLOW_CONSOLE_BACKTEST_TIMEOUT_MS, and pages, sign-out checks and live lists need the others.
 */
export const MAX_BACKTESTS_PER_SCOPE = 1;
export const MAX_BACKTESTS = 2;

/**
 * The dry-run replay of a time range (`walflow replay --dry-run`), shown on the workflows page. It runs as
 * walflow itself inside a transaction it rolls back; an operator fixed to a tenant replays only that tenant's
 * events, which trigger only that tenant's workflows.
 */
export async function runBacktest(context: ConsoleContext, request: ConsoleRequest, form: URLSearchParams): Promise<void> {
  const { tenant: fixedTenant } = request.principal;
  const input: BacktestInput = {
    from: textParameter(form, 'from', 40),
    to: textParameter(form, 'to', 40),
    workflow: textParameter(form, 'workflow'),
    type: textParameter(form, 'type'),
    tenant: fixedTenant ?? textParameter(form, 'tenant'),
  };
  if (input.workflow !== '' && !isUuid(input.workflow)) throw new HttpError(400, `not a workflow id: ${input.workflow}`);
  const release = context.backtests.take(fixedTenant ?? '');
  if (release === null) {
    throw new HttpError(429, `a backtest is running for this scope already, or ${MAX_BACKTESTS} in all: wait for it, or stop it by leaving its page`);
  }
  try {
    await backtest(context, request, input);
  } finally {
    release();
  }
}

async function backtest(context: ConsoleContext, request: ConsoleRequest, input: BacktestInput): Promise<void> {
  const { config, logger } = context.host;
  // One instant for both times and the retention check, as the CLI's replay: `-30d` with 30 days' retention holds.
  const now = new Date();
  // A backtest holds one of the console's few connections for as long as it runs: it stops at its time limit,
  // when its client leaves and when the console closes.
  const clientLeft = new AbortController();
  request.response.once('close', () => clientLeft.abort());
  const timeLimit = AbortSignal.timeout(config.consoleBacktestTimeoutMs);
  const deadline = new Date(Date.now() + config.consoleBacktestTimeoutMs);
  const stopped = linkSignals([clientLeft.signal, timeLimit, context.closing]);
  try {
    const result = await replayRange({
      db: context.db,
      logger,
      slotName: config.slotName,
      from: parseTime(input.from, now),
      to: parseTime(input.to, now),
      now,
      type: input.type || undefined,
      tenantId: input.tenant || undefined,
      workflow: input.workflow || undefined,
      dryRun: true,
      policy: { updateFields: config.updateFields },
      maxDepth: config.maxDepth,
      retentionDays: config.retentionDays,
      signal: stopped.signal,
      statementDeadline: deadline,
    });
    await showWorkflows(context, request, { input, result });
  } catch (error) {
    if (clientLeft.signal.aborted && !request.response.writableEnded) return logger.info({ from: input.from, to: input.to }, 'console backtest stopped: its client left');
    // A statement cancelled at the deadline may answer before the timer that aborts the signal has run.
    const stoppedByTime = timeLimit.aborted || (sqlStateOf(error) === SqlState.queryCanceled && Date.now() >= deadline.getTime());
    const notice = stoppedByTime
      ? `the backtest was stopped after ${config.consoleBacktestTimeoutMs / 1000} s (WALFLOW_CONSOLE_BACKTEST_TIMEOUT_MS): backtest a shorter range, one event type or one workflow`
      : isWalflowError(error, 'config_invalid') || isWalflowError(error, 'not_found')
        ? error.message
        : undefined;
    if (notice === undefined) throw error;
    await showWorkflows(context, { ...request, notice: { kind: 'error', text: notice } }, { input }, stoppedByTime ? 503 : 400);
  } finally {
    stopped.dispose();
  }
}
