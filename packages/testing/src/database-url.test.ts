import { describe, expect, it } from 'vitest';
import { withDatabase } from './database-url.js';

describe('withDatabase', () => {
  it('replaces the database path', () => {
    expect(withDatabase('postgres://postgres@127.0.0.1:5433/postgres', 'walflow_test_1')).toBe(
      'postgres://postgres@127.0.0.1:5433/walflow_test_1',
    );
  });

  it('adds a database when the URL has none', () => {
    expect(withDatabase('postgresql://u:p@db:5432', 'x')).toBe('postgresql://u:p@db:5432/x');
  });

  it('keeps credentials and query parameters', () => {
    expect(withDatabase('postgres://user:s%40cret@db.example:6543/app?sslmode=require', 'other')).toBe(
      'postgres://user:s%40cret@db.example:6543/other?sslmode=require',
    );
  });
});
