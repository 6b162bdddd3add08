/**
 * Characters PostgreSQL cannot store as given: NUL, which neither text nor jsonb holds (22021, 22P05), and a
 * lone UTF-16 surrogate, which is no character at all: jsonb refuses its escape (22P02) and a text column gets
 * U+FFFD in its place. With the u flag a surrogate pair is one code point, so only lone halves match.
 */
// eslint-disable-next-line no-control-regex -- NUL is what this looks for
const UNSTORABLE = /[\u0000\p{Surrogate}]/u;

/** What in `text` PostgreSQL could not store, described for a message, or null. */
export function unstorableCharacter(text: string): string | null {
  const found = UNSTORABLE.exec(text)?.[0];
  if (found === undefined) return null;
  return found === '\u0000' ? 'a NUL character (\\u0000)' : `a lone surrogate (\\u${found.charCodeAt(0).toString(16)})`;
}

const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'gu');

/**
 * `text` as PostgreSQL can store it, in at most `maxChars` UTF-16 units: NUL and lone surrogates become U+FFFD,
 * and so does half a surrogate pair the cut leaves. For what walflow writes of text it did not choose (an error a
 * server answered, a key an event carried): a failure whose text could not be stored was never recorded at all.
 */
export function storableText(text: string, maxChars: number): string {
  return text.slice(0, maxChars).replace(UNSTORABLE_ALL, '\uFFFD');
}
