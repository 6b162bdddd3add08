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

/** What an operator allows workflows to touch; checked when a workflow is applied. */
export interface WorkflowPolicy {
  /** `schema.table.column` entries that update_field may write. @default [] */
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
  const allowed = new Set(policy.updateFields ?? []);
  definition.actions.forEach((action, index) => {
    if (action.type !== 'update_field') return;
    const target = `${action.table}.${action.column}`;
    if (!allowed.has(target)) {
      throw new WalflowError(
        'workflow_invalid',
        `workflow ${definition.name}: actions.${index}: update_field may not write ${target}; allowed: ${[...allowed].join(', ') || 'nothing (set WALFLOW_UPDATE_FIELDS)'}`,
      );
    }
  });
}
