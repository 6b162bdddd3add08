import { describe, expect, it } from 'vitest';
import { nestsDeeperThan } from './json-depth.js';

const nested = (levels: number, inner = '1'): string => `${'{"a": ['.repeat(levels)}${inner}${']}'.repeat(levels)}`;

describe('nestsDeeperThan', () => {
  it('counts objects and arrays alike, one level each', () => {
    expect(nestsDeeperThan('{"a": 1}', 0)).toBe(true);
    expect(nestsDeeperThan('{"a": 1}', 1)).toBe(false);
    expect(nestsDeeperThan(nested(3), 6)).toBe(false);
    expect(nestsDeeperThan(nested(3), 5)).toBe(true);
  });

  it('reads brackets and braces inside strings as text, escaped quotes included', () => {
    const text = `{"a": "${'{['.repeat(50)}\\"${'['.repeat(50)}", "b": [1]}`;
    expect(nestsDeeperThan(text, 2)).toBe(false);
    expect(nestsDeeperThan(text, 1)).toBe(true);
    expect(nestsDeeperThan(`{"a\\\\": [[1]]}`, 2)).toBe(true);
  });

  it('holds the default of 1,000 levels, at any depth PostgreSQL stores, without recursion', () => {
    expect(nestsDeeperThan(nested(500))).toBe(false);
    expect(nestsDeeperThan(`${nested(500).slice(0, -2)}, {"b": 2}]}`)).toBe(false);
    expect(nestsDeeperThan(`{"x": ${nested(500)}}`)).toBe(true);
    expect(nestsDeeperThan(nested(100_000))).toBe(true);
  });
});
