/** Every failure walflow reports carries one of these codes, so callers can branch without parsing messages. */
export type WalflowErrorCode =
  | 'config_invalid'
  | 'catalog_invalid'
  | 'event_unknown'
  | 'payload_invalid'
  | 'event_id_reused'
  | 'workflow_invalid'
  | 'identifier_invalid'
  | 'message_invalid'
  | 'slot_missing'
  | 'slot_plugin_not_allowed'
  | 'wal_level_not_logical'
  | 'outbox_older_than_slot'
  | 'migration_failed'
  | 'migration_locked'
  | 'database_unavailable'
  | 'replication_failed'
  | 'action_failed'
  | 'dispatch_failed'
  | 'previous_batch_failed'
  | 'commit_not_visible'
  | 'wrong_server'
  | 'leader_busy'
  | 'prune_busy'
  | 'interrupted'
  | 'sink_failed'
  | 'not_found'
  | 'already_recorded'
  | 'workflow_disabled';

export class WalflowError extends Error {
  override readonly name = 'WalflowError';

  constructor(
    readonly code: WalflowErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.details = options?.details;
  }

  readonly details: Record<string, unknown> | undefined;

  /** Wraps anything caught at a boundary, keeping an existing WalflowError as it is. */
  static from(error: unknown, code: WalflowErrorCode, message: string): WalflowError {
    if (error instanceof WalflowError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    return new WalflowError(code, `${message}: ${reason}`, { cause: error });
  }
}

export function isWalflowError(error: unknown, code?: WalflowErrorCode): error is WalflowError {
  return error instanceof WalflowError && (code === undefined || error.code === code);
}
