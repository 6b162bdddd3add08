/**
 * How deep an event's payload or metadata may nest. PostgreSQL stores jsonb some ten thousand levels deep, but
 * walflow walks and writes events with JavaScript, whose JSON.stringify gives up at a few thousand levels: a
 * deeper event would fail wherever it is written out again (a webhook body, the console, explain), and a walk
 * over it could stop the consumer for every tenant. Far beyond any real event.
 */
export const MAX_JSON_DEPTH = 1000;

/**
 * Whether JSON text nests objects and arrays more than `maxDepth` levels deep (`{"a": 1}` is one level). Reads
 * the text, not a parsed value, without recursion; text too short to reach the depth is not read at all, so the
 * check costs nothing for nearly every event.
 */
export function nestsDeeperThan(text: string, maxDepth: number = MAX_JSON_DEPTH): boolean {
  // Every level opens with one character and closes with another.
  if (text.length < 2 * (maxDepth + 1)) return false;
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === BACKSLASH) index++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) inString = true;
    else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) depth--;
  }
  return false;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
