import { z } from 'zod';

/**
 * The crm's one rule for an email address: the catalog's events require it, and the services check it where a
 * person is created. zod's rule is stricter than RFC 5321 — it refuses `admin@localhost`, `josé@example.com` and
 * `a&b@example.com` — but the agency mails these people, and every event about them carries the address. Checked
 * only in the events, such an address would be stored and then fail every sign-in, payout and policy of its owner,
 * long after whoever typed it had gone; checked on creation, it is refused once, to the person who can correct it.
 */
// At most 254 characters, as SMTP allows: a longer one passed zod's pattern, then was refused by emit() as an
// aggregate id (a bounce reported for it answered 500).
export const emailAddress = z.email().max(254);

/** Returns `email` when events can carry it; otherwise throws an error that names it. */
export function assertEmailAddress(email: string): string {
  const parsed = emailAddress.safeParse(email);
  if (!parsed.success) {
    throw new Error(`${JSON.stringify(email)} is not an email address the crm accepts: ${parsed.error.issues.map((issue) => issue.message).join('; ')}`);
  }
  return parsed.data;
}
