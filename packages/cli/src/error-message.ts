/**
 * What the CLI prints for a failure. Node's AggregateError (a refused connection to `localhost`, which resolves to
 * both ::1 and 127.0.0.1) has an empty message: its code and the errors it aggregates are what say what happened.
 */
export function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const headline = error.message || (typeof code === 'string' ? code : error.name);
  const inner: unknown[] = error instanceof AggregateError ? error.errors : [];
  return inner.length === 0 ? headline : `${headline}: ${inner.map(errorMessage).join('; ')}`;
}
