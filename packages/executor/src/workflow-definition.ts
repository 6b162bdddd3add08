import { DEFAULT_TENANT, EVENT_TYPE_PATTERN, RUN_EVENT_TYPES, WalflowError } from '@walflow/core';
import { z } from 'zod';
import { sendEmailActionSchema } from './actions/send-email.js';
import { webhookActionSchema } from './actions/webhook.js';
import { mustacheTemplate, templatedJson } from './render-mustache.js';

const eventType = z.string().max(200).regex(EVENT_TYPE_PATTERN, 'must be a dotted event name such as policy.approved');
/** A trigger is an event type, or a prefix ending in `*` (`policy.*`, or `*` for every event). */
const triggerPattern = z
  .string()
  .max(200)
  .refine((value) => value === '*' || EVENT_TYPE_PATTERN.test(value) || (value.endsWith('.*') && EVENT_TYPE_PATTERN.test(value.slice(0, -2))), {
    message: 'must be an event type, a prefix such as policy.*, or *',
  });
/** A CEL expression; compiled (and so checked) when the workflow is applied. */
const expression = z.string().min(1).max(2000);
const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier');
/** An object whose strings are templates, each checked when the workflow is applied. */
const templatedObject = z.record(z.string(), templatedJson);

export const emitEventActionSchema = z.strictObject({
  type: z.literal('emit_event'),
  /**
   * The event type to emit; it goes through the outbox like any application event. Not one a run emits about
   * itself: those are walflow's word (and pass an application's catalog unchecked).
   */
  event: eventType.refine((type) => !Object.values<string>(RUN_EVENT_TYPES).includes(type), {
    message: `is an event walflow's runs emit about themselves (${Object.values(RUN_EVENT_TYPES).join(', ')}); a workflow may not emit it`,
  }),
  /** String fields may use `{{event.…}}` placeholders. */
  payload: templatedObject.default({}),
  aggregateType: mustacheTemplate.optional(),
  aggregateId: mustacheTemplate.optional(),
});

export const createNotificationActionSchema = z.strictObject({
  type: z.literal('create_notification'),
  recipient: mustacheTemplate.min(1),
  title: mustacheTemplate.min(1),
  body: mustacheTemplate.default(''),
  data: templatedObject.default({}),
});

export const updateFieldActionSchema = z
  .strictObject({
    type: z.literal('update_field'),
    /** `schema.table`; with `column`, it must be on the configured allow list. */
    table: z.string().regex(/^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$/, 'must be schema.table in lower case'),
    /** The row: `{ "column": "id", "value": "{{event.payload.agentId}}" }`. */
    key: z.strictObject({ column: identifier, value: z.union([mustacheTemplate, z.number()]) }),
    column: identifier,
    /** The new value, or… */
    value: templatedJson.optional(),
    /** …a number (or a placeholder for one) added to the current value. */
    increment: z.union([z.number(), mustacheTemplate]).optional(),
    /** The row must also have the event's tenant in this column: a tenant's event cannot reach another's rows. */
    tenantColumn: identifier.optional(),
  })
  .refine((action) => (action.value === undefined) !== (action.increment === undefined), {
    message: 'set exactly one of value or increment',
  });

export const actionSchema = z.discriminatedUnion('type', [
  emitEventActionSchema,
  createNotificationActionSchema,
  updateFieldActionSchema,
  sendEmailActionSchema,
  webhookActionSchema,
]);

export const workflowDefinitionSchema = z.strictObject({
  tenant: z.string().min(1).max(200).default(DEFAULT_TENANT),
  name: z.string().min(1).max(200),
  status: z.enum(['active', 'paused', 'disabled']).default('active'),
  trigger: z.strictObject({ event: triggerPattern }),
  /** CEL over `event`; the workflow fires only when it is true. */
  condition: expression.optional(),
  /** CEL over `event`; when true, cooldown and rate limits are skipped (critical events). */
  bypass: expression.optional(),
  cooldown: z.strictObject({ seconds: z.number().int().positive().max(31_536_000), key: expression.optional() }).optional(),
  rateLimits: z
    // A window counts in an integer column: a larger limit could never be reached, and the count would overflow.
    .array(z.strictObject({ limit: z.number().int().positive().max(2_147_483_647), periodSeconds: z.number().int().positive().max(31_536_000), key: expression.optional() }))
    .max(5)
    .default([]),
  /** `aggregate`: runs of this workflow for one aggregate execute in commit order. */
  ordering: z.enum(['aggregate', 'none']).default('aggregate'),
  /**
   * At most `limit` runs of this workflow execute at once, across every worker process; with `key` (CEL over
   * `event`, computed when the run is queued) the limit holds per key value.
   */
  concurrency: z.strictObject({ limit: z.number().int().min(1).max(10_000), key: expression.optional() }).optional(),
  actions: z.array(actionSchema).min(1).max(20),
  retry: z.strictObject({ maxAttempts: z.number().int().min(1).max(100).default(5) }).default({ maxAttempts: 5 }),
  /** After this many dead runs in a row the workflow pauses itself and emits workflow.auto_paused. */
  autoPause: z.strictObject({ afterConsecutiveFailures: z.number().int().min(1).max(1000).default(5) }).default({ afterConsecutiveFailures: 5 }),
});

export type WorkflowDefinition = z.output<typeof workflowDefinitionSchema>;
export type WorkflowDefinitionInput = z.input<typeof workflowDefinitionSchema>;
export type WorkflowAction = z.output<typeof actionSchema>;
export type UpdateFieldAction = z.output<typeof updateFieldActionSchema>;
export type CreateNotificationAction = z.output<typeof createNotificationActionSchema>;
export type EmitEventAction = z.output<typeof emitEventActionSchema>;

/** Validates a workflow document's shape; the error names every offending field. */
export function parseWorkflowDefinition(input: unknown, source = 'workflow'): WorkflowDefinition {
  const result = workflowDefinitionSchema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new WalflowError('workflow_invalid', `${source} is invalid: ${issues.join('; ')}`, { details: { issues } });
  }
  return result.data;
}
