/** Who may open the console: one token that sees every tenant, and tokens that see one tenant each. */
export interface ConsoleSettings {
  token: string;
  /** Tenant → token: its operator sees only that tenant's rows. */
  tenantTokens: ReadonlyMap<string, string>;
}

/** Tokens shorter than this are refused: the token is the console's only secret. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * Reads WALFLOW_CONSOLE_TOKEN and WALFLOW_CONSOLE_TOKENS (`tenant=token` pairs, comma-separated). Returns the
 * problems found, each naming its variable, so the configuration can report them with all others.
 */
export function parseConsoleSettings(token: string | undefined, tenantTokens: string | undefined): { settings: ConsoleSettings | undefined; problems: string[] } {
  const problems: string[] = [];
  const pairs = new Map<string, string>();
  for (const entry of (tenantTokens ?? '').split(',').map((part) => part.trim()).filter((part) => part.length > 0)) {
    const separator = entry.indexOf('=');
    const tenant = entry.slice(0, Math.max(0, separator)).trim();
    const value = entry.slice(separator + 1).trim();
    if (separator < 1 || tenant.length === 0) problems.push('WALFLOW_CONSOLE_TOKENS must be comma-separated tenant=token pairs');
    else if (value.length < MIN_TOKEN_LENGTH) problems.push(`WALFLOW_CONSOLE_TOKENS: the token of tenant ${tenant} must be at least ${MIN_TOKEN_LENGTH} characters`);
    else if (pairs.has(tenant)) problems.push(`WALFLOW_CONSOLE_TOKENS names tenant ${tenant} twice`);
    else pairs.set(tenant, value);
  }
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) problems.push(`WALFLOW_CONSOLE_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters`);
  if (token === undefined && pairs.size > 0) problems.push('WALFLOW_CONSOLE_TOKENS needs WALFLOW_CONSOLE_TOKEN: the console is off without it');
  const values = [...pairs.values(), ...(token === undefined ? [] : [token])];
  if (new Set(values).size !== values.length) problems.push('WALFLOW_CONSOLE_TOKENS: every token must differ from the others and from WALFLOW_CONSOLE_TOKEN');
  if (problems.length > 0 || token === undefined) return { settings: undefined, problems };
  return { settings: { token, tenantTokens: pairs }, problems };
}
