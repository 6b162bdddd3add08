import { describe, expect, it } from 'vitest';
import { isTransientDatabaseError } from './sqlstate.js';

const pgError = (code: string) => Object.assign(new Error(`error ${code}`), { code });

describe('isTransientDatabaseError', () => {
  it('treats connection, shutdown, serialization and deadlock errors as transient', () => {
    for (const code of ['08006', '08003', '57P01', '57P03', '40001', '40P01', '53300']) expect(isTransientDatabaseError(pgError(code))).toBe(true);
    expect(isTransientDatabaseError(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('treats errors about the data as permanent', () => {
    for (const code of ['23505', '22P02', '23514', 'P0001']) expect(isTransientDatabaseError(pgError(code))).toBe(false);
    expect(isTransientDatabaseError(new TypeError('x is undefined'))).toBe(false);
  });
});
