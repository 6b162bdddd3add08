import { WalflowError } from '@walflow/core';
import { compileExpression, type CompiledExpression } from './expressions/compile-expression.js';
import type { WorkflowDefinition } from './workflow-definition.js';

/** A workflow's CEL expressions, compiled once when it is applied or loaded. */
export interface CompiledExpressions {
  condition: CompiledExpression | undefined;
  bypass: CompiledExpression | undefined;
  cooldownKey: CompiledExpression | undefined;
  rateLimitKeys: (CompiledExpression | undefined)[];
  concurrencyKey: CompiledExpression | undefined;
}

/** What an operator allows workflows to touch; checked when a workflow is applied, and again when its runs execute. */
export interface WorkflowPolicy {
  /**
   * `schema.table.column` entries that update_field may write; `schema.table.column@tenant_column` only within the
   * event's tenant: the action must name that column as its `tenantColumn`. @default []
   */
  updateFields?: readonly string[];
}

/** Compiles every expression of a workflow; an error (workflow_invalid) names the field and the position in it. */
export function compileWorkflow(definition: WorkflowDefinition): CompiledExpressions {
  const compile = (field: string, source: string | undefined, expectBoolean: boolean): CompiledExpression | undefined =>
    source === undefined ? undefined : compileExpression(source, { field, expectBoolean });
  return {
    condition: compile('condition', definition.condition, true),
    bypass: compile('bypass', definition.bypass, true),
    cooldownKey: compile('cooldown.key', definition.cooldown?.key, false),
    rateLimitKeys: definition.rateLimits.map((limit, index) => compile(`rateLimits.${index}.key`, limit.key, false)),
    concurrencyKey: compile('concurrency.key', definition.concurrency?.key, false),
  };
}

/** Refuses what the definition may express but the operator did not allow. */
export function checkWorkflowPolicy(definition: WorkflowDefinition, policy: WorkflowPolicy): void {
  const refusal = policyRefusal(definition, policy);
  if (refusal !== undefined) throw new WalflowError('workflow_invalid', refusal);
}

/** Why the operator's policy does not allow the definition, or undefined when it does. */
export function policyRefusal(definition: WorkflowDefinition, policy: WorkflowPolicy): string | undefined {
  // target → the tenant column it must be scoped by, or null; made only for a workflow that updates a field (this
  // runs before every run a worker executes).
  let allowed: Map<string, string | null> | undefined;
  for (const [index, action] of definition.actions.entries()) {
    if (action.type !== 'update_field') continue;
    allowed ??= new Map((policy.updateFields ?? []).map((entry) => {
      const [target, tenantColumn] = entry.split('@') as [string, string | undefined];
      return [target, tenantColumn ?? null] as const;
    }));
    const target = `${action.table}.${action.column}`;
    const where = `workflow ${definition.name}: actions.${index}: update_field`;
    if (!allowed.has(target)) {
      return `${where} may not write ${target}; allowed: ${[...(policy.updateFields ?? [])].join(', ') || 'nothing (set WALFLOW_UPDATE_FIELDS)'}`;
    }
    const tenantColumn = allowed.get(target);
    if (tenantColumn !== null && action.tenantColumn !== tenantColumn) {
      return `${where} may write ${target} only within the event's tenant: add "tenantColumn": "${tenantColumn}"`;
    }
  }
  return undefined;
}
