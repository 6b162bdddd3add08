import { randomUUID } from 'node:crypto';
import { inTransaction, isWalflowError, WalflowError, type WalflowDatabase, type WorkflowStatus } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { checkWorkflowPolicy, compileWorkflow, type WorkflowPolicy } from './compile-workflow.js';
import { anyUuid } from './any-uuid.js';
import { carryGuardStateOver } from './guard-state-carry-over.js';
import { asApplied } from './template-names.js';
import { parseWorkflowDefinition, type WorkflowDefinition } from './workflow-definition.js';

export interface StoredWorkflow {
  id: string;
  tenantId: string;
  name: string;
  status: WorkflowStatus;
  /** Why a workflow paused itself (auto-pause); null when it is active or an operator paused it. */
  pausedReason: string | null;
  triggerEvent: string;
  version: number;
  definition: WorkflowDefinition;
  updatedAt: Date;
}

/**
 * A stored workflow whose definition this walflow cannot read or compile: a row edited by hand, or written by a
 * version whose documents this one no longer accepts. It acts on nothing until it is applied again, and holds up
 * no other workflow: its events are decided `inactive` with the reason, its runs fail with it.
 */
export interface UnreadableWorkflow extends Omit<StoredWorkflow, 'definition'> {
  unreadable: string;
}

/** A workflow as read from its row: readable, or not. */
export type ReadWorkflow = StoredWorkflow | UnreadableWorkflow;

export function isUnreadable(workflow: ReadWorkflow): workflow is UnreadableWorkflow {
  return 'unreadable' in workflow;
}

export type ApplyOutcome = 'created' | 'updated' | 'unchanged';

/**
 * Creates or updates a workflow by (tenant, name). The version increases only when the document changed, so
 * applying the same file twice is a no-op. A change to the actions cancels the workflow's runs that have begun
 * executing them: running, or queued for a retry or dead after an action succeeded whose place in the list now
 * holds another action (a retry, or an operator's retry of a dead run, skips succeeded actions by their place).
 * Runs that have done nothing yet run the new actions, and so do those whose succeeded actions kept their places.
 * Both happen in one transaction, the caller's if `db` is one.
 */
export async function applyWorkflow(
  db: Kysely<WalflowDatabase>,
  input: unknown,
  policy: WorkflowPolicy = {},
): Promise<{ workflow: StoredWorkflow; outcome: ApplyOutcome; runsCancelled: number }> {
  const definition = validateWorkflow(input, policy);
  return inTransaction(db, (trx) => applyIn(trx, definition));
}

/** Every check applying a workflow makes before it writes: its shape, its expressions, the operator's policy. */
export function validateWorkflow(input: unknown, policy: WorkflowPolicy = {}): WorkflowDefinition {
  const definition = asApplied(() => parseWorkflowDefinition(input));
  compileWorkflow(definition);
  checkWorkflowPolicy(definition, policy);
  return definition;
}

async function applyIn(db: Kysely<WalflowDatabase>, definition: WorkflowDefinition): Promise<{ workflow: StoredWorkflow; outcome: ApplyOutcome; runsCancelled: number }> {
  const actions = JSON.stringify(definition.actions);
  // The runs first, the workflow's row after: the order a worker's transaction locks them in, so the two never
  // wait for each other.
  const cancelled = await db
    .updateTable('walflow.workflow_runs as r')
    .from('walflow.workflows as w')
    .set({
      status: 'cancelled',
      finished_at: sql`now()`,
      last_error: sql`'the workflow''s actions changed (version ' || (w.version + 1) || ') after this run had begun executing them; replay the event to run the new actions'
                      || coalesce(' (it had failed: ' || r.last_error || ')', '')`,
      locked_by: null,
      locked_until: null,
    })
    .whereRef('r.workflow_id', '=', 'w.id')
    .where('w.tenant_id', '=', definition.tenant)
    .where('w.name', '=', definition.name)
    .where(sql<boolean>`w.actions IS DISTINCT FROM ${actions}::jsonb`)
    .where((eb) =>
      eb.or([
        eb('r.status', '=', 'running'),
        // A retry skips a succeeded action by its place: only a run with one whose place now holds another action
        // would skip what it has not done, or do again what it has. Changing an action it has yet to succeed in
        // (fixing the webhook it died on) leaves it to go on, or to be retried.
        eb.and([
          eb('r.status', 'in', ['queued', 'dead']),
          eb.exists(
            eb
              .selectFrom('walflow.action_outcomes as o')
              .select(sql`1`.as('done'))
              .whereRef('o.run_id', '=', 'r.id')
              .where('o.status', '=', 'succeeded')
              .where(sql<boolean>`(w.actions -> o.action_index) IS DISTINCT FROM (${actions}::jsonb -> o.action_index)`),
          ),
        ]),
      ]),
    )
    .executeTakeFirst();
  await carryGuardStateOver(db, definition);
  const document = JSON.stringify(definition);
  const written = await db
    .insertInto('walflow.workflows')
    .values({
      tenant_id: definition.tenant,
      name: definition.name,
      status: definition.status,
      trigger_event: definition.trigger.event,
      condition: definition.condition ?? null,
      bypass: definition.bypass ?? null,
      cooldown: definition.cooldown === undefined ? null : JSON.stringify(definition.cooldown),
      rate_limits: JSON.stringify(definition.rateLimits),
      ordering: definition.ordering,
      actions,
      definition: document,
    })
    .onConflict((conflict) =>
      conflict
        .columns(['tenant_id', 'name'])
        .doUpdateSet({
          status: (eb) => eb.ref('excluded.status'),
          trigger_event: (eb) => eb.ref('excluded.trigger_event'),
          condition: (eb) => eb.ref('excluded.condition'),
          bypass: (eb) => eb.ref('excluded.bypass'),
          cooldown: (eb) => eb.ref('excluded.cooldown'),
          rate_limits: (eb) => eb.ref('excluded.rate_limits'),
          ordering: (eb) => eb.ref('excluded.ordering'),
          actions: (eb) => eb.ref('excluded.actions'),
          // A re-applied workflow starts with a clean failure count and no pause reason.
          consecutive_failures: 0,
          paused_reason: null,
          definition: (eb) => eb.ref('excluded.definition'),
          version: sql`walflow.workflows.version + 1`,
          updated_at: sql`now()`,
        })
        // Or the status: a workflow walflow paused itself keeps the document's status in its definition, and the
        // document applied again, unchanged, is the operator's word that it runs (as a pause from the CLI is).
        .where(sql<boolean>`walflow.workflows.definition IS DISTINCT FROM excluded.definition OR walflow.workflows.status IS DISTINCT FROM excluded.status`),
    )
    .returning(['id', sql<boolean>`xmax = 0`.as('inserted')])
    .executeTakeFirst();
  const stored = await getWorkflow(db, definition.tenant, definition.name);
  if (!stored) throw new Error(`workflow ${definition.name} vanished while it was applied`);
  const outcome: ApplyOutcome = !written ? 'unchanged' : written.inserted ? 'created' : 'updated';
  return { workflow: stored, outcome, runsCancelled: Number(cancelled.numUpdatedRows) };
}

/**
 * The workflow a document would apply as, without applying it (a backtest): validated as applyWorkflow validates
 * it, with the id and next version of the workflow it would update, or a fresh id when it would create one.
 */
export async function candidateWorkflow(db: Kysely<WalflowDatabase>, input: unknown, policy: WorkflowPolicy = {}): Promise<StoredWorkflow> {
  const definition = validateWorkflow(input, policy);
  // Only what identifies it: the stored definition may be the one that cannot be read, which this one replaces.
  const existing = await db.selectFrom('walflow.workflows').select(['id', 'version']).where('tenant_id', '=', definition.tenant).where('name', '=', definition.name).executeTakeFirst();
  return {
    id: existing?.id ?? randomUUID(),
    tenantId: definition.tenant,
    name: definition.name,
    status: definition.status,
    pausedReason: null,
    triggerEvent: definition.trigger.event,
    version: (existing?.version ?? 0) + 1,
    definition,
    updatedAt: new Date(),
  };
}

/**
 * Pauses or resumes a workflow (the stored document follows, so a later apply starts from it): 'changed', or
 * 'unchanged' when it already had that status, or 'missing' when there is no such workflow. A workflow already
 * paused keeps its pause as it was (a pause walflow made keeps its reason), an active one its failure count:
 * a second click, or one on a page drawn before the change, changes nothing and is not audited. A workflow its
 * document disables is refused ('workflow_disabled'): whoever disabled it meant it to stay off until a document
 * says otherwise.
 */
export async function setWorkflowStatus(db: Kysely<WalflowDatabase>, tenantId: string, name: string, status: 'active' | 'paused'): Promise<WorkflowStatusChange> {
  const result = await db
    .updateTable('walflow.workflows')
    .set({
      status,
      definition: sql`jsonb_set(definition, '{status}', to_jsonb(${status}::text))`,
      paused_reason: null,
      consecutive_failures: 0,
      updated_at: sql`now()`,
    })
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .where('status', 'not in', ['disabled', status])
    .executeTakeFirst();
  if (result.numUpdatedRows === 1n) return 'changed';
  const workflow = await db.selectFrom('walflow.workflows').select('status').where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
  if (workflow?.status === 'disabled') {
    throw new WalflowError('workflow_disabled', `${tenantId}/${name} is disabled by its document: apply it with status active or paused to turn it on`);
  }
  return workflow === undefined ? 'missing' : 'unchanged';
}

export type WorkflowStatusChange = 'changed' | 'unchanged' | 'missing';

/** Deletes a workflow; its history stays, and its queued runs are cancelled by the workers. */
export async function deleteWorkflow(db: Kysely<WalflowDatabase>, tenantId: string, name: string): Promise<boolean> {
  const result = await db.deleteFrom('walflow.workflows').where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
  return result.numDeletedRows === 1n;
}

export async function getWorkflow(db: Kysely<WalflowDatabase>, tenantId: string, name: string): Promise<StoredWorkflow | undefined> {
  const row = await selectWorkflows(db).where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
  return row && toStoredWorkflow(row);
}

export async function getWorkflowById(db: Kysely<WalflowDatabase>, id: string): Promise<ReadWorkflow | undefined> {
  return (await getWorkflowsById(db, [id])).get(id);
}

/** The workflows with these ids that exist, by id; one that cannot be read stands beside the others. */
export async function getWorkflowsById(db: Kysely<WalflowDatabase>, ids: readonly string[]): Promise<Map<string, ReadWorkflow>> {
  if (ids.length === 0) return new Map();
  const rows = await selectWorkflows(db).where('id', '=', anyUuid(ids)).execute();
  return new Map(rows.map((row) => [row.id, readWorkflow(row)]));
}



/** The workflows, by tenant and name; one that cannot be read stands beside the others instead of failing them all. */
export async function listWorkflows(db: Kysely<WalflowDatabase>, filter: { tenantId?: string } = {}): Promise<ReadWorkflow[]> {
  let query = selectWorkflows(db).orderBy('tenant_id').orderBy('name');
  if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
  return (await query.execute()).map(readWorkflow);
}

function selectWorkflows(db: Kysely<WalflowDatabase>) {
  return db
    .selectFrom('walflow.workflows')
    .select(['id', 'tenant_id', 'name', 'status', 'paused_reason', 'trigger_event', 'version', 'definition', 'updated_at']);
}

interface WorkflowRow {
  id: string;
  tenant_id: string;
  name: string;
  status: WorkflowStatus;
  paused_reason: string | null;
  trigger_event: string;
  version: number;
  definition: Record<string, unknown>;
  updated_at: Date;
}

/**
 * The row as a workflow, or, when its definition cannot be read or its expressions compiled (every reader
 * agrees, workers and lists as the dispatcher), as what can be said of it without it.
 */
function readWorkflow(row: WorkflowRow): ReadWorkflow {
  try {
    const stored = toStoredWorkflow(row);
    compileWorkflow(stored.definition);
    return stored;
  } catch (error) {
    if (!isWalflowError(error, 'workflow_invalid')) throw error;
    return { ...rowFields(row), unreadable: error.message };
  }
}

function toStoredWorkflow(row: WorkflowRow): StoredWorkflow {
  return { ...rowFields(row), definition: parseWorkflowDefinition(row.definition, `stored workflow ${row.name}`) };
}

function rowFields(row: WorkflowRow): Omit<StoredWorkflow, 'definition'> {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    status: row.status,
    pausedReason: row.paused_reason,
    triggerEvent: row.trigger_event,
    version: row.version,
    updatedAt: row.updated_at,
  };
}
