import { describe, expect, it } from 'vitest';
import { catalog } from '../src/catalog.js';

/**
 * The catalog refuses an event that lacks, or holds wrongly, a field the agency's workflows read: walflow started
 * with it parks such an event as a dead letter rather than run a workflow on it.
 */
const agent = '0190a6f0-0000-7000-8000-000000000001';
const other = '0190a6f0-0000-7000-8000-000000000002';
const policy = { id: other, product: 'Term life', premiumCents: 125_000, status: 'approved', agentId: agent };
const client = { id: agent, name: 'Katherine Johnson', email: 'katherine@crm.test' };

/** A valid payload of each event the workflows read, and the fields they read, as paths. */
const read: [string, Record<string, unknown>, string[]][] = [
  ['recruit.graduated_to_agent', { recruitId: other, agentId: agent, name: 'Ada', email: 'ada@crm.test' }, ['email', 'name', 'agentId']],
  ['policy.approved', { policy, client }, ['policy.id', 'policy.agentId', 'policy.product', 'policy.premiumCents', 'client.name', 'client.id']],
  ['commission.earned', { commissionId: other, agentId: agent, policyId: null, amountCents: 100 }, ['agentId', 'amountCents']],
  ['commission.chargeback', { commissionId: other, agentId: agent, policyId: null, amountCents: 100, reason: 'lapsed' }, ['agentId', 'amountCents']],
  ['user.login', { userId: agent, email: 'hedy@crm.test', role: 'manager', ip: '203.0.113.10' }, ['userId', 'email', 'role', 'ip']],
];

function without(payload: Record<string, unknown>, path: string): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  const copy = { ...payload };
  if (rest.length === 0) delete copy[head!];
  else copy[head!] = without(copy[head!] as Record<string, unknown>, rest.join('.'));
  return copy;
}

describe('the agency catalog', () => {
  it('takes each event the workflows read as the services write it, and refuses it without any field they read', () => {
    for (const [type, payload, fields] of read) {
      expect(catalog.check(type, payload).ok, type).toBe(true);
      for (const field of fields) expect(catalog.check(type, without(payload, field)).ok, `${type} without ${field}`).toBe(false);
    }
  });

  it('refuses values the workflows could not act on: a negative amount, an id that is no uuid, an unknown role or phase', () => {
    const refused: [string, Record<string, unknown>][] = [
      ['commission.earned', { commissionId: other, agentId: agent, policyId: null, amountCents: -100 }],
      ['commission.earned', { commissionId: other, agentId: 'a1', policyId: null, amountCents: 100 }],
      ['user.login', { userId: agent, email: 'hedy@crm.test', role: 'owner', ip: '203.0.113.10' }],
      ['user.login', { userId: agent, email: 'not an address', role: 'manager', ip: '203.0.113.10' }],
      ['recruit.phase_changed', { recruitId: other, name: 'Ada', from: 'applied', to: 'retired' }],
    ];
    for (const [type, payload] of refused) expect(catalog.check(type, payload).ok, JSON.stringify(payload)).toBe(false);
  });
});
