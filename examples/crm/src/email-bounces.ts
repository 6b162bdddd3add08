import type { Kysely } from 'kysely';
import { z } from 'zod';
import { outbox } from './crm-outbox.js';
import { emailAddress } from './email-address.js';
import { inTransaction } from './in-transaction.js';
import { storableInstant, storableText } from './postgres-storable.js';
import type { CrmDatabase } from './schema.js';
import { TENANT } from './tenant.js';

/**
 * The bounce notification an email provider posts (one per bounce). Unknown fields are ignored, as providers add
 * them over time:
 * `{ "type": "bounce", "email": "ada@example.com", "bounceType": "hard", "messageId": "<…>",
 *    "description": "550 5.1.1 mailbox unknown", "bouncedAt": "2025-05-01T12:00:00Z" }`
 */
export const bounceNotificationSchema = z.object({
  type: z.literal('bounce'),
  email: emailAddress,
  bounceType: z.enum(['hard', 'soft']),
  /** The Message-ID of the mail that bounced (walflow's email.sent carries it), when the provider knows it. */
  messageId: storableText.min(1).max(998).nullable().default(null),
  description: storableText.max(2000).default(''),
  bouncedAt: storableInstant,
});

export type BounceNotification = z.output<typeof bounceNotificationSchema>;

/**
 * Marks the address as bouncing on the user who has it (if any) → `email.bounced`, in one transaction; returns the
 * event's id.
 */
export async function recordBounce(db: Kysely<CrmDatabase>, bounce: BounceNotification): Promise<string> {
  return inTransaction(db, async (trx) => {
    const user = await trx
      .updateTable('crm.users')
      .set({ email_bounced_at: bounce.bouncedAt })
      .where('email', '=', bounce.email)
      .returning('id')
      .executeTakeFirst();
    return outbox.emit(trx, {
      type: 'email.bounced',
      tenantId: TENANT,
      aggregateType: 'email',
      aggregateId: bounce.email,
      payload: {
        email: bounce.email,
        userId: user?.id ?? null,
        messageId: bounce.messageId,
        bounceType: bounce.bounceType,
        description: bounce.description,
        bouncedAt: bounce.bouncedAt,
      },
    });
  });
}
