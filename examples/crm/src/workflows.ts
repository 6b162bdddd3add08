import { readdir, readFile } from 'node:fs/promises';
import type { WalflowDatabase } from '@walflow/core';
import { applyWorkflow, type ApplyOutcome, type StoredWorkflow, type WorkflowPolicy } from '@walflow/executor';
import type { Kysely } from 'kysely';

/** examples/crm/workflows, from src/ (tests) and dist/ (the demo) alike. */
const WORKFLOWS_DIR = new URL('../workflows/', import.meta.url);

/** `schema.table.column` the example workflows write with update_field (walflow's WALFLOW_UPDATE_FIELDS). */
export const CRM_UPDATE_FIELDS = ['crm.users.lifetime_commission_cents'] as const;

/** Reads one of the example's workflow documents, e.g. `welcome-agent`. */
export async function readWorkflow(name: string): Promise<unknown> {
  return JSON.parse(await readFile(new URL(`${name}.json`, WORKFLOWS_DIR), 'utf8')) as unknown;
}

/** Applies every workflow document in examples/crm/workflows, like `walflow workflows apply workflows/*.json`. */
export async function applyCrmWorkflows(
  db: Kysely<WalflowDatabase>,
  policy: WorkflowPolicy = { updateFields: CRM_UPDATE_FIELDS },
): Promise<{ workflow: StoredWorkflow; outcome: ApplyOutcome }[]> {
  const names = (await readdir(WORKFLOWS_DIR)).filter((file) => file.endsWith('.json')).sort();
  const applied = [];
  for (const file of names) applied.push(await applyWorkflow(db, await readWorkflow(file.slice(0, -'.json'.length)), policy));
  return applied;
}
