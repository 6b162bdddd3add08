import { describe, expect, it } from 'vitest';
import { inexactNumberPath } from './inexact-numbers.js';

const check = (text: string): string | null => inexactNumberPath(text, JSON.parse(text));

describe('inexactNumberPath', () => {
  it('finds integers beyond 2^53 - 1 and numbers beyond a double, with their path', () => {
    expect(check('{"order": {"id": 9007199254740993}}')).toBe('$.order.id');
    expect(check('{"ids": [1, 9007199254740992]}')).toBe('$.ids[1]');
    expect(check(`{"huge": 1${'0'.repeat(400)}}`)).toBe('$.huge');
    expect(check('{"a key": -12345678901234567.5}')).toBe('$["a key"]');
  });

  it('passes what JavaScript holds exactly, long digit runs in strings, and long decimals', () => {
    expect(check('{"id": 9007199254740991, "n": -9007199254740991}')).toBeNull();
    expect(check('{"card": "4111111111111111111", "id": "9007199254740993"}')).toBeNull();
    expect(check('{"ratio": 0.12345678901234567890}')).toBeNull();
    expect(check('{"premium": 1250.5, "items": [1, 2, 3]}')).toBeNull();
  });
});
