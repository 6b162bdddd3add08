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
