import { describe, expect, it } from 'vitest';
import { AdvisoryLockClass } from './advisory-locks.js';

describe('advisory lock classes', () => {
  it('gives every purpose a class of its own', () => {
    const classes = Object.values(AdvisoryLockClass);
    expect(new Set(classes).size).toBe(classes.length);
  });

  it('keeps the numbers the SQL functions of the migrations take', () => {
    expect(AdvisoryLockClass.concurrencyGroup).toBe(30563);
  });
});
