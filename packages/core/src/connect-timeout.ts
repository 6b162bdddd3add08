/** pg's own wording (client.js, connectionTimeoutMillis): the one error its connect timeout ends with. */
const PG_CONNECT_TIMEOUT = 'timeout expired';

/**
 * pg ends a connection that did not open within its `connectionTimeoutMillis` with "timeout expired", which
 * names neither the wait nor where its limit comes from. Every connection walflow opens takes the limit from
 * DATABASE_URL's connect_timeout (the server's connectionConfig), so this says that instead. Any other error is
 * returned as it is.
 */
export function explainConnectTimeout<Reported>(error: Reported, timeoutMs: number | undefined): Reported | Error {
  if (!(error instanceof Error) || error.message !== PG_CONNECT_TIMEOUT || !timeoutMs) return error;
  return new Error(`PostgreSQL did not answer within ${timeoutMs / 1000} s (the connect_timeout of DATABASE_URL)`, { cause: error });
}
