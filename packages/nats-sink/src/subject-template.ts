import { createHash } from 'node:crypto';
import type { EventEnvelope } from '@walflow/core';

/** The event fields a subject template may name. */
export type SubjectFields = Pick<EventEnvelope, 'tenantId' | 'type' | 'aggregateType' | 'aggregateId'>;

/**
 * Dot-separated tokens of letters, digits, `_` and `-`, and the placeholders {tenant}, {type}, {aggregateType}
 * and {aggregateId}, at most one in a token. The first token is literal, so the stream captures `<literal
 * prefix>.>` and never every subject on the server. Two values in one token could meet: with `{tenant}-{type}`,
 * tenant `a-b` of type `c` and tenant `a` of type `b-c` would share a subject, and a consumer allowed one tenant's
 * subjects would read the other's events.
 */
export const SUBJECT_TEMPLATE_PATTERN = /^[A-Za-z0-9_-]+(\.([A-Za-z0-9_-]+|[A-Za-z0-9_-]*\{(tenant|type|aggregateType|aggregateId)\}[A-Za-z0-9_-]*))*$/;

const PLACEHOLDER = /\{(tenant|type|aggregateType|aggregateId)\}/g;
const PLAIN_TOKEN_BYTE = /^[A-Za-z0-9_-]$/;
const encoder = new TextEncoder();

/**
 * The subject of an event. The event type's dots are kept, so `walflow.*.policy.>` selects policy events of
 * every tenant; tenant and aggregate values become one token each: any byte other than a letter, digit, `_`
 * or `-` is written `%XX` (a dot, a space or a wildcard would change the subject's shape), a missing or empty
 * value is `_`, and a token of more than 200 characters is cut, with a hash of the value at its end.
 */
export function subjectFor(template: string, event: SubjectFields): string {
  return template.replace(PLACEHOLDER, (_match, name: string) => {
    switch (name) {
      case 'type':
        return event.type;
      case 'tenant':
        return token(event.tenantId);
      case 'aggregateType':
        return token(event.aggregateType);
      default:
        return token(event.aggregateId);
    }
  });
}

/** What the stream captures: the template itself when it is all literal, else its literal prefix and `>`. */
export function streamSubjects(template: string): string[] {
  const tokens = template.split('.');
  const literal = tokens.findIndex((part) => part.includes('{'));
  return literal === -1 ? [template] : [[...tokens.slice(0, literal), '>'].join('.')];
}

/**
 * A token longer than this keeps its first characters and a hash of the whole value: the subject stays far below
 * nats-server's 4 KiB control line (a longer one makes the server close the connection, for ever on the same
 * event) and still tells values apart.
 */
const MAX_TOKEN_LENGTH = 200;
const KEPT_WHEN_HASHED = MAX_TOKEN_LENGTH - 17;
const HASHED_ENDING = /-([0-9a-f]{16})$/;

function token(value: string | null): string {
  if (value === null || value === '') return '_';
  // `_` stands for a missing value, so a value that is `_` itself is written as its byte.
  if (value === '_') return '%5F';
  let encoded = '';
  for (const character of value) {
    if (PLAIN_TOKEN_BYTE.test(character)) encoded += character;
    else for (const byte of encoder.encode(character)) encoded += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  // A value written as a cut one is (ending in `-` and 16 hex digits) has that `-` escaped: else it could be
  // chosen to be another, longer value's token.
  if (encoded.length <= MAX_TOKEN_LENGTH) return encoded.replace(HASHED_ENDING, '%2D$1');
  // Cut between escapes, never inside one.
  const kept = encoded.slice(0, KEPT_WHEN_HASHED).replace(/%[0-9A-F]?$/, '');
  return `${kept}-${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
}
