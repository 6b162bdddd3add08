import { describe, expect, it } from 'vitest';
import { copyRows, copyText, rowsToCopy } from './copy-text.js';

describe('copyText', () => {
  it('writes a line per row, tab-separated, with \\N for null and t/f for booleans', () => {
    expect(copyText([['a', 1, true, null], ['b', 2.5, false, undefined]])).toBe('a\t1\tt\t\\N\nb\t2.5\tf\t\\N\n');
  });

  it('escapes backslashes, tabs, newlines and carriage returns, so a field never ends early or reads as \\N', () => {
    expect(copyText([['\\N', 'a\tb', 'c\nd', 'e\rf', '\\.']])).toBe('\\\\N\ta\\tb\tc\\nd\te\\rf\t\\\\.\n');
  });

  it('writes objects as their JSON, escaped like any text', () => {
    expect(copyText([[{ text: 'x\ty', path: 'C:\\tmp' }, [1, 'two']]])).toBe('{"text":"x\\\\ty","path":"C:\\\\\\\\tmp"}\t[1,"two"]\n');
  });
});

describe('copyRows', () => {
  it('is a COPY FROM STDIN whose one parameter is its rows, and only such a statement has rows to copy', () => {
    const query = copyRows('walflow.events', ['id', 'payload'], [['e1', { n: 1 }]]);
    expect(query.sql).toBe('COPY walflow.events (id, payload) FROM STDIN');
    expect(rowsToCopy(query.sql, query.parameters)).toBe('e1\t{"n":1}\n');
    expect(rowsToCopy('SELECT $1', ['x'])).toBeNull();
    expect(rowsToCopy('COPY walflow.events (id) FROM STDIN', [])).toBeNull();
  });
});
