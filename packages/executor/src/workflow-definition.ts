import { DEFAULT_TENANT, EVENT_TYPE_PATTERN, WalflowError } from '@walflow/core';
import { z } from 'zod';

const eventType = z.string().max(200).regex(EVENT_TYPE_PATTERN, 'must be a dotted event name such as policy.approved');

export const emitEventActionSchema = z.strictObject({
  type: z.literal('emit_event'),
  /** The event type to emit; it goes through the outbox like any application event. */
  event: eventType,
  /** String fields may use `{{event.…}}` placeholders. */
  payload: z.record(z.string(), z.unknown()).default({}),
  aggregateType: z.string().optional(),
  aggregateId: z.string().optional(),
});

export const actionSchema = z.discriminatedUnion('type', [emitEventActionSchema]);

export const workflowDefinitionSchema = z.strictObject({
  tenant: z.string().min(1).max(200).default(DEFAULT_TENANT),
  name: z.string().min(1).max(200),
  status: z.enum(['active', 'paused', 'disabled']).default('active'),
  trigger: z.strictObject({ event: eventType }),
  actions: z.array(actionSchema).min(1),
  retry: z.strictObject({ maxAttempts: z.number().int().min(1).max(100).default(5) }).default({ maxAttempts: 5 }),
});

export type WorkflowDefinition = z.output<typeof workflowDefinitionSchema>;
export type WorkflowDefinitionInput = z.input<typeof workflowDefinitionSchema>;
export type WorkflowAction = z.output<typeof actionSchema>;

/** Validates a workflow document; the error names every offending field. */
export function parseWorkflowDefinition(input: unknown, source = 'workflow'): WorkflowDefinition {
  const result = workflowDefinitionSchema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new WalflowError('workflow_invalid', `${source} is invalid: ${issues.join('; ')}`, { details: { issues } });
  }
  return result.data;
}
