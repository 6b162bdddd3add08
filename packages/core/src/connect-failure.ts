import { NETWORK_ERROR_CODES } from './network-error-codes.js';

/** pg's own wording (client.js, connectionTimeoutMillis): the one error its connect timeout ends with. */
const PG_CONNECT_TIMEOUT = 'timeout expired';

/**
 * Says what a failure to open a connection means, where pg's own error does not:
 * - pg ends a connection that did not open within its `connectionTimeoutMillis` with "timeout expired", which
 *   names neither the wait nor where its limit comes from. Every connection walflow opens takes the limit from
 *   DATABASE_URL's connect_timeout (the server's connectionConfig), so this says that instead.
 * - A refused connection or an unknown host says `connect ECONNREFUSED 127.0.0.1:5432` (and nothing at all for a
 *   `localhost` that resolves to two addresses, an AggregateError): this names PostgreSQL and DATABASE_URL.
 * Any other error is returned as it is.
 */
export function explainConnectFailure<Reported>(error: Reported, timeoutMs: number | undefined): Reported | Error {
  if (!(error instanceof Error)) return error;
  if (error.message === PG_CONNECT_TIMEOUT && timeoutMs) {
    return new Error(`PostgreSQL did not answer within ${timeoutMs / 1000} s (the connect_timeout of DATABASE_URL)`, { cause: error });
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) {
    const detail = error instanceof AggregateError && error.message === '' ? error.errors.map((each: unknown) => (each instanceof Error ? each.message : String(each))).join('; ') : error.message;
    return new Error(`could not connect to PostgreSQL (DATABASE_URL): ${detail || code}`, { cause: error });
  }
  return error;
}
