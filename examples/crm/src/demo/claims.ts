import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { Recruit } from '../recruits.js';
import type { CapturedEmail } from '../smtp-sink.js';
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
  facts: { rolledBack: Recruit; decisions: DecisionRow[]; runs: RunRow[]; emails: readonly CapturedEmail[] },
): Promise<Claim[]> {
  const { rows } = await sql<{ events: number; mails_sent: number }>`
    SELECT (SELECT count(*)::int FROM walflow.events
             WHERE tenant_id = ${scope.tenant} AND aggregate_id = ${facts.rolledBack.id}
               AND (event_type = 'recruit.graduated_to_agent' OR payload->>'to' = 'graduated')) AS events,
           (SELECT count(*)::int FROM walflow.events
             WHERE tenant_id = ${scope.tenant} AND committed_at >= ${scope.since} AND event_type = 'email.sent') AS mails_sent`.execute(db);
  const counts = rows[0] ?? { events: -1, mails_sent: -1 };
  const rolledBackEvents = counts.events + facts.emails.filter((email) => email.to.includes(facts.rolledBack.email)).length;
  const rateLimited = facts.decisions.filter((decision) => decision.outcome === 'rate_limited').length;
  const unfinished = facts.runs.filter((run) => run.status !== 'succeeded');
  return [
    {
      claim: `${facts.rolledBack.name}'s rolled-back graduation left no trace`,
      holds: rolledBackEvents === 0,
      evidence: `${rolledBackEvents} events or mails about it`,
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
