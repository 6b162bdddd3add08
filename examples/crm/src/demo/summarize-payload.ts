/** Keys that identify rather than describe; the tables show names instead. */
const IDENTIFYING = /(^id$|Id$|^actionIndex$|^accepted$|^rejected$)/;

/**
 * A one-line digest of an event payload for a terminal table: `key=value` for every scalar, nested objects
 * flattened, identifiers left out (and a person's email when their name is there), cut at `width` characters.
 */
export function summarizePayload(payload: Record<string, unknown>, width = 64): string {
  const parts: string[] = [];
  const visitObject = (object: Record<string, unknown>): void => {
    for (const [key, value] of Object.entries(object)) {
      if (IDENTIFYING.test(key) || (key === 'email' && 'name' in object)) continue;
      if (Array.isArray(value)) parts.push(`${key}=${value.map(String).join(',')}`);
      else if (typeof value === 'object' && value !== null) visitObject(value as Record<string, unknown>);
      else if ((typeof value === 'string' && value !== '') || typeof value === 'number' || typeof value === 'boolean') parts.push(`${key}=${value}`);
    }
  };
  visitObject(payload);
  const line = parts.join(' ');
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}
