/** Where something sits in an expression's source: line and column from 1, offset from 0 (UTF-16 code units). */
export interface SourcePosition {
  line: number;
  column: number;
  offset: number;
}

/** Turns an offset into a line and column, clamping it to the source so a position is always printable. */
export function sourcePosition(source: string, offset: number): SourcePosition {
  const clamped = Math.max(0, Math.min(Number.isFinite(offset) ? Math.trunc(offset) : 0, source.length));
  let line = 1;
  let lineStart = 0;
  for (let index = 0; index < clamped; index++) {
    if (source[index] === '\n') {
      line++;
      lineStart = index + 1;
    }
  }
  return { line, column: clamped - lineStart + 1, offset: clamped };
}

/** The suffix every expression message ends with, so authors can find the problem in a multi-line expression. */
export function atPosition(position: SourcePosition): string {
  return `at line ${position.line}, column ${position.column}`;
}
