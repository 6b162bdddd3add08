import { describe, expect, it } from 'vitest';
import { sortVersionDirs } from './postgres-bindir.js';

describe('sortVersionDirs', () => {
  it('puts the highest major version first', () => {
    expect(sortVersionDirs(['13', '15', '9.6', '16', '14'])).toEqual(['16', '15', '14', '13', '9.6']);
  });

  it('compares numerically, not as text', () => {
    expect(sortVersionDirs(['9.6', '10'])[0]).toBe('10');
    expect(sortVersionDirs(['9.5', '9.10'])[0]).toBe('9.10');
  });

  it('ignores names that are not versions', () => {
    expect(sortVersionDirs(['lib', '15', 'common', ''])).toEqual(['15']);
  });

  it('returns nothing for an empty directory', () => {
    expect(sortVersionDirs([])).toEqual([]);
  });
});
