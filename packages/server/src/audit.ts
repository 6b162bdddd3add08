import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';

export interface AuditEntry {
  actor: string;
  action: string;
  target?: string | undefined;
  arguments?: Record<string, unknown> | undefined;
}

/** Writes one operator action to walflow.audit_log. */
export async function recordAudit(db: Kysely<WalflowDatabase>, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('walflow.audit_log')
    .values({ actor: entry.actor, action: entry.action, target: entry.target ?? null, arguments: JSON.stringify(entry.arguments ?? {}) })
    .execute();
}

export async function listAudit(db: Kysely<WalflowDatabase>, filter: { since: Date; limit: number }) {
  return db.selectFrom('walflow.audit_log').selectAll().where('at', '>=', filter.since).orderBy('at', 'desc').limit(filter.limit).execute();
}
