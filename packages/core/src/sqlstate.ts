import { NETWORK_ERROR_CODES } from './network-error-codes.js';

/** PostgreSQL error codes walflow reacts to (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export const SqlState = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  objectInUse: '55006',
  undefinedObject: '42704',
  duplicateObject: '42710',
  insufficientPrivilege: '42501',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  featureNotSupported: '0A000',
  objectNotInPrerequisiteState: '55000',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  protocolViolation: '08P01',
  programLimitExceeded: '54000',
} as const;

export function sqlStateOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/**
 * Errors that say nothing about the data: the connection, the server or a conflict with another transaction.
 * Retrying the same work later is right; parking an event because of one would lose it for no reason.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  const state = sqlStateOf(error);
  // Node's network codes sit where PostgreSQL's SQLSTATE does (`code`), and none of them is one.
  if (state !== undefined && NETWORK_ERROR_CODES.has(state)) return true;
  // A failure explained on top of its cause (explainConnectFailure) is as transient as the cause.
  if (error instanceof Error && error.cause !== undefined && isTransientDatabaseError(error.cause)) return true;
  if (state !== undefined) {
    return (
      state.startsWith('08') || // connection exception
      state.startsWith('53') || // insufficient resources
      state === SqlState.serializationFailure ||
      state === SqlState.deadlockDetected ||
      state === SqlState.adminShutdown ||
      state === SqlState.crashShutdown ||
      state === SqlState.cannotConnectNow ||
      state === SqlState.lockNotAvailable ||
      state === SqlState.queryCanceled
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return /Connection terminated|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}

/**
 * Errors in which the database refuses walflow's own statements whatever the data: a privilege revoked or a row
 * security policy that refuses walflow (class 42, with a table, column or function gone), a feature refused
 * (0A, such as COPY where row security is forced), a system or I/O error (58), configuration (F0), a full NOTIFY
 * queue. Every event would fail alike, so none is to blame: retrying the batch until the database is mended is
 * right, and parking events one by one would empty the stream into the dead letters while it looked healthy.
 * Internal errors (XX) are not among them: XX000 is also what some odd values make PostgreSQL raise, and an
 * event that always fails must be parked, not retried for ever in front of every tenant's.
 */
export function isDatabaseRefusingWork(error: unknown): boolean {
  const state = sqlStateOf(error);
  if (state === undefined) return false;
  if (state === SqlState.programLimitExceeded) return error instanceof Error && /NOTIFY queue/i.test(error.message);
  return ['42', '0A', '58', 'F0'].some((errorClass) => state.startsWith(errorClass));
}
