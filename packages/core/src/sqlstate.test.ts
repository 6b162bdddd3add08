import { describe, expect, it } from 'vitest';
import { explainConnectFailure } from './connect-failure.js';
import { isDatabaseRefusingWork, isTransientDatabaseError } from './sqlstate.js';

const pgError = (code: string) => Object.assign(new Error(`error ${code}`), { code });

describe('isTransientDatabaseError', () => {
  it('treats connection, shutdown, serialization and deadlock errors as transient', () => {
    for (const code of ['08006', '08003', '57P01', '57P03', '40001', '40P01', '53300']) expect(isTransientDatabaseError(pgError(code))).toBe(true);
    expect(isTransientDatabaseError(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('treats a connection the network refused or could not make as transient, however it is wrapped', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']) expect(isTransientDatabaseError(pgError(code)), code).toBe(true);
    // localhost resolves to ::1 and 127.0.0.1: Node reports both refusals in one AggregateError without a message.
    const both = Object.assign(new AggregateError([pgError('ECONNREFUSED'), pgError('ECONNREFUSED')], ''), { code: 'ECONNREFUSED' });
    expect(isTransientDatabaseError(both)).toBe(true);
    const explained = explainConnectFailure(pgError('ENOTFOUND'), 10_000);
    expect(explained).toMatchObject({ message: 'could not connect to PostgreSQL (DATABASE_URL): error ENOTFOUND' });
    expect(isTransientDatabaseError(explained)).toBe(true);
    expect(explainConnectFailure(both, 10_000)).toMatchObject({ message: 'could not connect to PostgreSQL (DATABASE_URL): error ECONNREFUSED; error ECONNREFUSED' });
  });

  it('treats errors about the data as permanent', () => {
    for (const code of ['23505', '22P02', '23514', 'P0001']) expect(isTransientDatabaseError(pgError(code))).toBe(false);
    expect(isTransientDatabaseError(new TypeError('x is undefined'))).toBe(false);
  });
});

describe('isDatabaseRefusingWork', () => {
  it('names the errors that come from privileges, schema, features, storage and configuration, not from the data', () => {
    for (const code of ['42501', '42P01', '42703', '42883', '0A000', '58030', 'F0000']) expect(isDatabaseRefusingWork(pgError(code)), code).toBe(true);
    expect(isDatabaseRefusingWork(Object.assign(new Error('too many notifications in the NOTIFY queue'), { code: '54000' }))).toBe(true);
  });

  it('leaves errors about an event to poison isolation: data, constraints, a trigger that raised, a row too large', () => {
    // XX000 too: PostgreSQL's internal errors include what some odd values make it raise.
    for (const code of ['22P02', '23505', '23514', 'P0001', 'XX000']) expect(isDatabaseRefusingWork(pgError(code)), code).toBe(false);
    expect(isDatabaseRefusingWork(Object.assign(new Error('index row size 3000 exceeds btree version 4 maximum 2704'), { code: '54000' }))).toBe(false);
    expect(isDatabaseRefusingWork(new TypeError('x is undefined'))).toBe(false);
  });
});
