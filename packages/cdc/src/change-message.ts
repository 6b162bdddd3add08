import type { Lsn } from '@walflow/core';

/**
 * One message of the committed change stream, whatever output plugin decoded it. The transaction assembler
 * only ever sees these, so wal2json and pgoutput share everything after decoding.
 */
export type ChangeMessage =
  | { kind: 'begin'; xid: string; commitLsn: Lsn; committedAt: string }
  /** An inserted row: column values as text (json columns as JSON text), the way wal2json prints them. */
  | { kind: 'insert'; schema: string; table: string; row: Record<string, unknown> }
  /** pgoutput (protocol 1) does not repeat the xid at the commit; wal2json does, and it is checked. */
  | { kind: 'commit'; xid: string | null; endLsn: Lsn }
  /** A logical message (heartbeats), or plugin bookkeeping such as pgoutput's relation descriptions. */
  | { kind: 'ignored' }
  /** An update, delete or truncate: the slot's filter should never let one through. */
  | { kind: 'unexpected'; action: string };
