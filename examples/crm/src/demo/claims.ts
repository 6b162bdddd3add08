import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { CapturedEmail } from '../smtp-sink.js';
import type { AgencyDayFacts } from './agency-day.js';
import type { DecisionRow, ReportScope, RunRow } from './report.js';

export interface Claim {
  claim: string;
  holds: boolean;
  evidence: string;
}

/** What the demo shows, checked against the database: the demo fails when one does not hold. */
export async function checkClaims(
  db: Kysely<WalflowDatabase>,
  scope: ReportScope,
  facts: AgencyDayFacts & { decisions: DecisionRow[]; runs: RunRow[]; emails: readonly CapturedEmail[] },
): Promise<Claim[]> {
  const { commissioned } = facts;
  const { rows } = await sql<{ events: number; mails_sent: number; phase: string | null; lifetime: string | null; role_changes: number; notified: number }>`
    SELECT (SELECT count(*)::int FROM walflow.events
             WHERE tenant_id = ${scope.tenant} AND aggregate_id = ${facts.rolledBack.id}
               AND (event_type = 'recruit.graduated_to_agent' OR payload->>'to' = 'graduated')) AS events,
           (SELECT count(*)::int FROM walflow.events
             WHERE tenant_id = ${scope.tenant} AND committed_at >= ${scope.since} AND event_type = 'email.sent') AS mails_sent,
           (SELECT phase FROM crm.recruits WHERE id = ${facts.rolledBack.id}) AS phase,
           (SELECT lifetime_commission_cents::text FROM crm.users WHERE id = ${commissioned.id}) AS lifetime,
           (SELECT count(*)::int FROM walflow.events
             WHERE tenant_id = ${scope.tenant} AND aggregate_id = ${commissioned.id} AND event_type = 'user.role_changed') AS role_changes,
           (SELECT count(*)::int FROM walflow.notifications WHERE tenant_id = ${scope.tenant} AND recipient = ${commissioned.id}) AS notified`.execute(db);
  const counts = rows[0] ?? { events: -1, mails_sent: -1, phase: null, lifetime: null, role_changes: -1, notified: -1 };
  const rolledBackEvents = counts.events + facts.emails.filter((email) => email.to.includes(facts.rolledBack.email)).length;
  const rateLimited = facts.decisions.filter((decision) => decision.outcome === 'rate_limited').length;
  const unfinished = facts.runs.filter((run) => run.status !== 'succeeded');
  return [
    {
      claim: `${facts.rolledBack.name}'s rolled-back graduation left no trace`,
      holds: rolledBackEvents === 0 && counts.phase === 'licensing',
      evidence: `${rolledBackEvents} events or mails about it; still ${counts.phase ?? 'missing'}`,
    },
    {
      claim: `${commissioned.name}'s lifetime commission is what he earned less what was charged back`,
      holds: counts.lifetime === String(commissioned.netCents),
      evidence: `${counts.lifetime ?? 'no'} cents, ${commissioned.netCents} expected`,
    },
    {
      claim: `the approval of ${commissioned.name}'s policy notified him`,
      holds: counts.notified > 0,
      evidence: `${counts.notified} notifications`,
    },
    {
      claim: `${commissioned.name}'s promotion is one user.role_changed, the update that changed nothing none`,
      holds: counts.role_changes === 1,
      evidence: `${counts.role_changes} user.role_changed`,
    },
    { claim: 'a workflow was rate-limited', holds: rateLimited > 0, evidence: `${rateLimited} rate_limited decisions` },
    {
      claim: 'every run succeeded',
      holds: facts.runs.length > 0 && unfinished.length === 0,
      evidence: `${facts.runs.length - unfinished.length} of ${facts.runs.length} succeeded`,
    },
    {
      claim: 'every email.sent event is a mail in the sink',
      holds: counts.mails_sent === facts.emails.length,
      evidence: `${counts.mails_sent} email.sent, ${facts.emails.length} captured`,
    },
  ];
}
