import type { CompiledQuery } from 'kysely';
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
  it('sends a COPY FROM STDIN whose one parameter is its rows, and only such a statement has rows to copy', async () => {
    const sent: CompiledQuery[] = [];
    await copyRows({ executeQuery: (query) => Promise.resolve(sent.push(query)) }, 'walflow.events', ['id', 'payload'], [['e1', { n: 1 }]]);
    expect(sent.map((query) => query.sql)).toEqual(['COPY walflow.events (id, payload) FROM STDIN']);
    expect(rowsToCopy(sent[0]!.sql, sent[0]!.parameters)).toBe('e1\t{"n":1}\n');
    expect(rowsToCopy('SELECT $1', ['x'])).toBeNull();
    expect(rowsToCopy('COPY walflow.events (id) FROM STDIN', [])).toBeNull();
  });

  it('names a connection that cannot stream rows, instead of passing on its protocol violation (a transient SQLSTATE class)', async () => {
    const refused = Object.assign(new Error('bind message supplies 1 parameters, but prepared statement "" requires 0'), { code: '08P01' });
    const unwrapped = { executeQuery: () => Promise.reject(refused) };
    await expect(copyRows(unwrapped, 'walflow.events', ['id'], [['e1']])).rejects.toMatchObject({
      code: 'dispatch_failed',
      message: 'COPY into walflow.events needs a connection made by createDatabase (@walflow/server), which streams its rows',
    });
    const other = Object.assign(new Error('duplicate key'), { code: '23505' });
    await expect(copyRows({ executeQuery: () => Promise.reject(other) }, 'walflow.events', ['id'], [['e1']])).rejects.toBe(other);
  });
});
