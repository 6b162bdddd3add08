import { EVENT_IDENTIFIER_MAX_BYTES, isValidEventType, unstorableCharacter, WalflowError, type EmitEvent } from '@walflow/core';

/**
 * Checks the names an event is found by before it is written: its type, its tenant and its aggregate. A name the
 * outbox took but the event log cannot index was refused at dispatch, after the write had committed, where the
 * event could only be parked.
 */
export function assertEventIdentifiers(event: EmitEvent): void {
  if (typeof event.type !== 'string' || !isValidEventType(event.type)) {
    throw new WalflowError('payload_invalid', `invalid event type ${JSON.stringify(event.type)}: use a dotted name such as policy.approved`);
  }
  for (const field of ['tenantId', 'aggregateType', 'aggregateId'] as const) {
    const problem = identifierProblem(event[field]);
    if (problem !== null) throw new WalflowError('payload_invalid', `${field} of ${event.type} ${problem}`);
  }
}

/**
 * Why emit refuses a tenant or aggregate name, or null. Absent (undefined, or null from JavaScript callers) is
 * fine: the tenant takes its default, the aggregate is none.
 */
export function identifierProblem(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value === '') return 'must be a non-empty string';
  const unstorable = unstorableCharacter(value);
  if (unstorable !== null) return `holds ${unstorable}, which PostgreSQL cannot store`;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > EVENT_IDENTIFIER_MAX_BYTES) return `takes ${bytes} bytes of UTF-8, more than the ${EVENT_IDENTIFIER_MAX_BYTES} the event log indexes`;
  return null;
}
