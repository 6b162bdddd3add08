import { describe, expect, it } from 'vitest';
import { quoteIdentifier, randomDatabaseName } from './database-name.js';

describe('randomDatabaseName', () => {
  it('uses the default prefix and a lower-case random suffix', () => {
    expect(randomDatabaseName()).toMatch(/^walflow_test_[0-9a-f]{12}$/);
  });

  it('is different each time', () => {
    expect(randomDatabaseName('p')).not.toBe(randomDatabaseName('p'));
  });

  it('accepts a custom prefix', () => {
    expect(randomDatabaseName('cdc_it', 'abc123')).toBe('cdc_it_abc123');
  });

  it('rejects prefixes that would need quoting', () => {
    expect(() => randomDatabaseName('Bad')).toThrow(/prefix/);
    expect(() => randomDatabaseName('a-b')).toThrow(/prefix/);
    expect(() => randomDatabaseName('x"; DROP')).toThrow(/prefix/);
  });

  it('rejects names PostgreSQL would truncate', () => {
    expect(() => randomDatabaseName('a'.repeat(60))).toThrow(/longer than 63/);
  });
});

describe('quoteIdentifier', () => {
  it('wraps in double quotes and doubles embedded ones', () => {
    expect(quoteIdentifier('walflow_test_1')).toBe('"walflow_test_1"');
    expect(quoteIdentifier('a"b')).toBe('"a""b"');
  });
});
