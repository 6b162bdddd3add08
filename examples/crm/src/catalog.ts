import { defineCatalog, defineEvent } from '@walflow/core';
import { z } from 'zod';
import { emailAddress as email } from './email-address.js';
import { POLICY_STATUSES, RECRUIT_PHASES, USER_ROLES } from './schema.js';

const id = z.uuid();
const cents = z.number().int().nonnegative();
const phase = z.enum(RECRUIT_PHASES);
const role = z.enum(USER_ROLES);

export const personSnapshot = z.object({ id, name: z.string(), email });
export const policySnapshot = z.object({
  id,
  product: z.string(),
  premiumCents: cents,
  status: z.enum(POLICY_STATUSES),
  agentId: id,
});
export type PolicySnapshot = z.infer<typeof policySnapshot>;
export type PersonSnapshot = z.infer<typeof personSnapshot>;

/** What every follow-up event of a workflow run carries (walflow's executor adds it). */
const runReference = { runId: z.string(), workflowId: z.string(), sourceEventId: z.string(), actionIndex: z.number().int() };

/**
 * Every event of the agency's back office with the payload it must carry. Application code emits through
 * createOutbox(catalog), so a wrong name or payload does not compile; walflow started with this catalog
 * (WALFLOW_CATALOG) parks anything else as a dead letter — hence the events walflow's own actions emit are here too.
 */
export const catalog = defineCatalog(
  defineEvent('recruit.created', z.object({ recruitId: id, name: z.string(), email, phase, sponsorId: id.nullable() })),
  defineEvent('recruit.phase_changed', z.object({ recruitId: id, name: z.string(), from: phase, to: phase })),
  defineEvent('recruit.graduated_to_agent', z.object({ recruitId: id, agentId: id, name: z.string(), email })),
  defineEvent('recruit.dropped_out', z.object({ recruitId: id, name: z.string(), from: phase })),

  defineEvent('policy.created', z.object({ policy: policySnapshot, client: personSnapshot })),
  defineEvent('policy.approved', z.object({ policy: policySnapshot, client: personSnapshot })),
  defineEvent('policy.cancelled', z.object({ policy: policySnapshot, client: personSnapshot, reason: z.string() })),

  defineEvent('commission.earned', z.object({ commissionId: id, agentId: id, policyId: id.nullable(), amountCents: cents })),
  defineEvent(
    'commission.chargeback',
    z.object({ commissionId: id, agentId: id, policyId: id.nullable(), amountCents: cents, reason: z.string() }),
  ),
  defineEvent('commission.paid', z.object({ commissionId: id, amountCents: cents, agent: personSnapshot })),

  defineEvent('user.login', z.object({ userId: id, email, role, ip: z.union([z.ipv4(), z.ipv6()]) })),
  // Written by the crm.users trigger (migration 0002), not by TypeScript.
  defineEvent('user.role_changed', z.object({ userId: id, name: z.string(), email, from: role, to: role })),

  // Emitted by walflow's send_email action.
  defineEvent(
    'email.sent',
    z.object({ ...runReference, messageId: z.string(), to: z.array(z.string()), accepted: z.array(z.string()), rejected: z.array(z.string()) }),
  ),
  defineEvent('email.failed', z.object({ ...runReference, error: z.string() })),
  // Emitted by the bounce webhook (bounce-webhook.ts).
  defineEvent(
    'email.bounced',
    z.object({
      email,
      userId: id.nullable(),
      messageId: z.string().nullable(),
      bounceType: z.enum(['hard', 'soft']),
      description: z.string(),
      bouncedAt: z.iso.datetime({ offset: true }),
    }),
  ),
  // Emitted by walflow when a workflow pauses itself after repeated dead runs.
  defineEvent(
    'workflow.auto_paused',
    z.object({ runId: z.string(), workflowId: z.string(), sourceEventId: z.string(), name: z.string(), consecutiveFailures: z.number().int(), lastError: z.string() }),
  ),
);
