import type { ColumnType, Generated } from 'kysely';

export const RECRUIT_PHASES = ['applied', 'licensing', 'training', 'graduated', 'dropped'] as const;
export type RecruitPhase = (typeof RECRUIT_PHASES)[number];

export const USER_ROLES = ['agent', 'manager', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];

export const POLICY_STATUSES = ['pending', 'approved', 'cancelled'] as const;
export type PolicyStatus = (typeof POLICY_STATUSES)[number];

export const COMMISSION_STATUSES = ['earned', 'charged_back', 'paid'] as const;
export type CommissionStatus = (typeof COMMISSION_STATUSES)[number];

type CreatedAt = ColumnType<Date, never, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface UsersTable {
  id: Generated<string>;
  name: string;
  email: string;
  role: UserRole;
  /** bigint: node-postgres returns it as a string. */
  lifetime_commission_cents: ColumnType<string, never, never>;
  last_login_at: Timestamp | null;
  email_bounced_at: Timestamp | null;
  created_at: CreatedAt;
}

export interface RecruitsTable {
  id: Generated<string>;
  name: string;
  email: string;
  phase: Generated<RecruitPhase>;
  sponsor_id: string | null;
  /** The agent's user, once the recruit graduated. */
  agent_id: string | null;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface ClientsTable {
  id: Generated<string>;
  name: string;
  email: string;
  created_at: CreatedAt;
}

export interface PoliciesTable {
  id: Generated<string>;
  client_id: string;
  agent_id: string;
  product: string;
  premium_cents: number;
  status: Generated<PolicyStatus>;
  cancel_reason: string | null;
  created_at: CreatedAt;
  approved_at: Timestamp | null;
  cancelled_at: Timestamp | null;
}

export interface CommissionsTable {
  id: Generated<string>;
  agent_id: string;
  policy_id: string | null;
  amount_cents: number;
  status: Generated<CommissionStatus>;
  chargeback_reason: string | null;
  created_at: CreatedAt;
  paid_at: Timestamp | null;
}

/** Kysely's view of the `crm` schema. */
export interface CrmDatabase {
  'crm.users': UsersTable;
  'crm.recruits': RecruitsTable;
  'crm.clients': ClientsTable;
  'crm.policies': PoliciesTable;
  'crm.commissions': CommissionsTable;
}
