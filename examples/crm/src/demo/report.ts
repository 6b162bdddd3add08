import type { WalflowDatabase } from '@walflow/core';
import type { HealthReport } from '@walflow/server';
import Table from 'cli-table3';
import { sql, type Kysely } from 'kysely';
import type { CrmDatabase } from '../schema.js';
import type { CapturedEmail } from '../smtp-sink.js';
import { summarizePayload } from './summarize-payload.js';

/** Which rows of the shared tables belong to this run of the demo. */
export interface ReportScope {
  tenant: string;
  /** Database time when the scripted day began. */
  since: Date;
  /** The suffix of this run's addresses. */
  tag: string;
}

type Row = (string | number)[];

/** A titled cli-table3 table as text; colour only on a terminal, so piped output stays plain. */
export function renderTable(title: string, head: string[], rows: Row[]): string {
  const table = new Table({ head, style: { head: process.stdout.isTTY ? ['cyan'] : [], border: [], compact: true } });
  table.push(...rows);
  return `\n${title}\n${rows.length === 0 ? '(none)' : table.toString()}`;
}

const clock = (column: string) => sql<string>`to_char(${sql.ref(column)} AT TIME ZONE 'UTC', 'HH24:MI:SS.MS')`;

export async function eventsTable(db: Kysely<WalflowDatabase>, scope: ReportScope): Promise<string> {
  const { rows } = await sql<{ at: string; event_type: string; payload: Record<string, unknown>; written_by: string }>`
    SELECT ${clock('e.committed_at')} AS at, e.event_type, e.payload,
           coalesce('workflow ' || w.name, e.metadata->>'source', 'application') AS written_by
      FROM walflow.events e LEFT JOIN walflow.workflows w ON w.id::text = e.metadata->>'workflowId'
     WHERE e.tenant_id = ${scope.tenant} AND e.committed_at >= ${scope.since}
     ORDER BY e.committed_at, e.tx_position`.execute(db);
  return renderTable(
    `Events recorded by walflow (${rows.length}), in commit order`,
    ['committed (UTC)', 'event', 'written by', 'payload'],
    rows.map((row) => [row.at, row.event_type, row.written_by, summarizePayload(row.payload)]),
  );
}

export interface DecisionRow {
  at: string;
  event_type: string;
  workflow: string;
  outcome: string;
  reason: string;
  payload: Record<string, unknown>;
}

export async function decisionRows(db: Kysely<WalflowDatabase>, scope: ReportScope): Promise<DecisionRow[]> {
  const { rows } = await sql<DecisionRow>`
    SELECT ${clock('d.event_committed_at')} AS at, e.event_type, w.name AS workflow, d.outcome, d.reason, e.payload
      FROM walflow.decisions d
      JOIN walflow.workflows w ON w.id = d.workflow_id
      JOIN walflow.events e ON e.id = d.event_id AND e.committed_at = d.event_committed_at
     WHERE d.tenant_id = ${scope.tenant} AND d.event_committed_at >= ${scope.since}
     ORDER BY d.event_committed_at, e.tx_position, w.name`.execute(db);
  return rows;
}

export function decisionsTable(rows: DecisionRow[]): string {
  return renderTable(
    `Decisions (${rows.length}): every workflow whose trigger matched, and why it ran or not`,
    ['event committed', 'event', 'workflow', 'outcome', 'reason', 'payload'],
    rows.map((row) => [row.at, row.event_type, row.workflow, row.outcome, row.reason, summarizePayload(row.payload, 40)]),
  );
}

export interface RunRow {
  workflow: string;
  event_type: string;
  status: string;
  attempts: number;
  actions: string | null;
  last_error: string | null;
}

export async function runRows(db: Kysely<WalflowDatabase>, scope: ReportScope): Promise<RunRow[]> {
  const { rows } = await sql<RunRow>`
    SELECT w.name AS workflow, r.event_type, r.status, r.attempts, r.last_error,
           (SELECT string_agg(o.action_type || ' ' || o.status, ', ' ORDER BY o.action_index)
              FROM walflow.action_outcomes o WHERE o.run_id = r.id) AS actions
      FROM walflow.workflow_runs r JOIN walflow.workflows w ON w.id = r.workflow_id
     WHERE r.tenant_id = ${scope.tenant} AND r.event_committed_at >= ${scope.since}
     ORDER BY r.event_committed_at, r.tx_position`.execute(db);
  return rows;
}

export function runsTable(rows: RunRow[]): string {
  return renderTable(
    `Runs (${rows.length}) and their outcomes`,
    ['workflow', 'event', 'status', 'attempts', 'actions', 'last error'],
    rows.map((row) => [row.workflow, row.event_type, row.status, row.attempts, row.actions ?? '', row.last_error ?? '']),
  );
}

export function emailsTable(emails: readonly CapturedEmail[]): string {
  return renderTable(
    `Emails captured by the local SMTP sink (${emails.length})`,
    ['to', 'subject', 'Message-ID'],
    emails.map((email) => [email.to.join(', '), email.subject, email.messageId]),
  );
}

/** What the workflows changed in the application: users' lifetime commission, bounces, notifications. */
export async function applicationTables(crm: Kysely<CrmDatabase>, walflow: Kysely<WalflowDatabase>, scope: ReportScope): Promise<string> {
  const users = await crm
    .selectFrom('crm.users')
    .select(['id', 'name', 'role', 'lifetime_commission_cents', 'email_bounced_at'])
    .where('email', 'like', `%+${scope.tag}@%`)
    .orderBy('created_at')
    .execute();
  const names = new Map(users.map((user) => [user.id, user.name]));
  const notifications = await walflow
    .selectFrom('walflow.notifications')
    .select(['recipient', 'title', 'body'])
    .where('tenant_id', '=', scope.tenant)
    .where('created_at', '>=', scope.since)
    .orderBy('created_at')
    .execute();
  return [
    renderTable(
      'crm.users after the day (lifetime commission kept by update_field, the bounce by the webhook)',
      ['user', 'role', 'lifetime commission', 'email bounced'],
      users.map((user) => [user.name, user.role, `$${(Number(user.lifetime_commission_cents) / 100).toFixed(2)}`, user.email_bounced_at ? 'yes' : '']),
    ),
    renderTable(
      'walflow.notifications (create_notification)',
      ['recipient', 'title', 'body'],
      notifications.map((row) => [names.get(row.recipient) ?? row.recipient, row.title, row.body]),
    ),
  ].join('\n');
}

export function healthTables(report: HealthReport): string {
  const { slot, lag, runs } = report;
  const summary: Row[] = [
    ['status', report.status],
    ['role', report.role ?? ''],
    ['slot', slot === null ? 'missing' : `${slot.name} (${slot.active ? 'active' : 'inactive'}, wal ${slot.walStatus ?? '?'})`],
    ['lag', `${lag.bytes} bytes, ${lag.seconds} s (oldest outbox row)`],
    ['WAL retained by the slot', `${lag.retainedBytes} bytes`],
    ['runs', `${runs.queued} queued, ${runs.running} running, ${runs.dead} dead`],
    ['dead letters', report.deadLetters],
    ['last event', report.lastEventAt ?? ''],
  ];
  return [
    renderTable('Health (the document GET /health serves)', [], summary),
    renderTable('Health checks', ['check', 'state', 'message'], report.checks.map((check) => [check.name, check.state, check.message])),
  ].join('\n');
}
