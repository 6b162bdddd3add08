/**
 * The functions a walflow expression may call. Everything else the CEL library knows is refused when the
 * workflow is applied, so a library upgrade cannot silently widen what workflows can do. Operators
 * (`== != < <= > >= + - * / % in && || ! ?:`), field access, indexing and list/map literals are always allowed.
 */
export const ALLOWED_FUNCTIONS: ReadonlySet<string> = new Set(['size', 'has', 'timestamp', 'duration', 'string', 'int', 'double']);

/** Methods (`receiver.name(…)`): string tests, sizes, and reading parts of a timestamp or duration. */
export const ALLOWED_METHODS: ReadonlySet<string> = new Set([
  'startsWith',
  'endsWith',
  'contains',
  'size',
  'lowerAscii',
  'upperAscii',
  'trim',
  'getFullYear',
  'getMonth',
  'getDate',
  'getDayOfMonth',
  'getDayOfWeek',
  'getDayOfYear',
  'getHours',
  'getMinutes',
  'getSeconds',
  'getMilliseconds',
]);

/**
 * Macros iterate over a list: `list.exists(x, p)`, `all`, `exists_one`, `filter`, `map(x, t)` and
 * `map(x, p, t)`. The first argument names the element; the others are evaluated once per element.
 */
export const MACROS: ReadonlySet<string> = new Set(['exists', 'all', 'exists_one', 'filter', 'map']);

/** Refused with a reason of their own: the library runs them on JavaScript's backtracking RegExp engine. */
export const REGEX_FUNCTIONS: ReadonlySet<string> = new Set(['matches']);

export const REGEX_REFUSAL =
  'regular expressions are not allowed: a pattern with catastrophic backtracking (ReDoS) could stall the dispatcher; use startsWith, endsWith, contains or ==';

/**
 * Calls whose argument must be written in the expression, not read from the event. `duration(text)` parses with
 * the library's unanchored backtracking pattern, cubic in a string of digits; `s.contains(t)` is JavaScript's
 * `includes`, which for a needle longer than 250 characters can compare its whole length at every position:
 * either, given event text, held the dispatcher for minutes in one native call no deadline can stop.
 */
export const LITERAL_ARGUMENT: ReadonlyMap<string, string> = new Map([
  ['duration', "duration() takes a duration written in the expression, such as duration('1h'): parsing text from the event could stall the dispatcher"],
  ['contains', ".contains() takes a string written in the expression, such as .contains('vip'): a needle from the event could stall the dispatcher; compare with == or 'in' instead"],
]);
