/**
 * The environment for a process a test starts: this one's, without the walflow and libpq settings of the shell that
 * ran the tests (a `WALFLOW_ROLE`, `DATABASE_URL` or `PGOPTIONS` exported there would change what the test
 * measures), then `settings`.
 * The suite's own `WALFLOW_TEST_*` pass through.
 */
export function childEnvironment(settings: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(
    ([name]) => !(name === 'DATABASE_URL' || name.startsWith('PG') || (name.startsWith('WALFLOW_') && !name.startsWith('WALFLOW_TEST_'))),
  );
  return { ...Object.fromEntries(inherited), ...settings };
}
