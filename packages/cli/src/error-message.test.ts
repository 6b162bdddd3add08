import { describe, expect, it } from 'vitest';
import { errorMessage } from './error-message.js';

describe('errorMessage', () => {
  it('says what an AggregateError with no message of its own holds: its code and each error', () => {
    const refused = Object.assign(
      new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], ''),
      { code: 'ECONNREFUSED' },
    );
    expect(errorMessage(refused)).toBe('ECONNREFUSED: connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
  });

  it('keeps a message, and names an error that has neither message nor code', () => {
    expect(errorMessage(new Error('no workflow x'))).toBe('no workflow x');
    expect(errorMessage(new TypeError(''))).toBe('TypeError');
    expect(errorMessage('thrown text')).toBe('thrown text');
  });
});
