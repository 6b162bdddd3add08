/**
 * Node's codes for a connection the network refused, reset or timed out, or a host it could not resolve or reach:
 * failures of the way to PostgreSQL, which say nothing about the data sent.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
