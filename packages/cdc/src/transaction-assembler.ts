import { WalflowError, type CommitPosition, type EventCatalog, type EventEnvelope, type ParkedRow, type TransactionEnd } from '@walflow/core';
import type { ChangeMessage } from './change-message.js';
import { mapOutboxRow } from './map-outbox-row.js';

/**
 * A piece of the committed stream. Slices of one transaction arrive in order; only the last one carries `end`,
 * and only after it has been recorded may the slot move past the transaction.
 */
export interface StreamSlice {
  events: EventEnvelope[];
  parked: ParkedRow[];
  end: TransactionEnd | null;
  /** The text its rows arrived as, in characters (rowText): what holding the slice costs in memory, roughly. */
  textLength: number;
}

export interface TransactionAssemblerOptions {
  outboxSchema: string;
  outboxTable: string;
  catalog?: EventCatalog | undefined;
  /**
   * A transaction with more outbox rows than this is handed on in slices, so a huge transaction never sits in
   * memory whole: recording is idempotent, and the slot is only acknowledged at the commit.
   * @default 2000
   */
  sliceSize?: number;
  /**
   * …or once its rows' text reaches this many characters, so that a transaction of large payloads is not held
   * whole either: 2,000 rows of a megabyte would be two gigabytes. @default 8 Mi
   */
  sliceTextLength?: number;
}

interface OpenTransaction {
  commit: CommitPosition;
  position: number;
  slice: StreamSlice;
}

/** Groups change messages (begin, inserts, commit) into slices of committed transactions. */
export class TransactionAssembler {
  private open: OpenTransaction | null = null;
  private readonly sliceSize: number;
  private readonly sliceTextLength: number;

  constructor(private readonly options: TransactionAssemblerOptions) {
    this.sliceSize = options.sliceSize ?? 2000;
    this.sliceTextLength = options.sliceTextLength ?? 8 * 1024 * 1024;
  }

  /** True between a transaction's B and its C. */
  get inTransaction(): boolean {
    return this.open !== null;
  }

  /** Returns the slices that the message completes (none, one or, at a commit, the rest of the transaction). */
  accept(message: ChangeMessage): StreamSlice[] {
    switch (message.kind) {
      case 'begin': {
        if (this.open) throw protocolError(`BEGIN of xid ${message.xid} inside xid ${this.open.commit.xid}`);
        const { xid, commitLsn, committedAt } = message;
        this.open = { commit: { xid, commitLsn, committedAt }, position: 0, slice: emptySlice() };
        return [];
      }
      case 'insert': {
        const open = this.requireOpen('INSERT');
        if (message.schema !== this.options.outboxSchema || message.table !== this.options.outboxTable) return [];
        const mapped = mapOutboxRow(message.row, { commit: open.commit, position: open.position++, catalog: this.options.catalog });
        if (mapped.kind === 'event') open.slice.events.push(mapped.event);
        else open.slice.parked.push(mapped.row);
        open.slice.textLength += rowText(message.row);
        if (open.slice.events.length + open.slice.parked.length < this.sliceSize && open.slice.textLength < this.sliceTextLength) return [];
        const full = open.slice;
        open.slice = emptySlice();
        return [full];
      }
      case 'commit': {
        const open = this.requireOpen('COMMIT');
        if (message.xid !== null && message.xid !== open.commit.xid) throw protocolError(`COMMIT of xid ${message.xid} inside xid ${open.commit.xid}`);
        this.open = null;
        const last = open.slice;
        last.end = { commitLsn: open.commit.commitLsn, endLsn: message.endLsn, committedAt: open.commit.committedAt };
        return [last];
      }
      case 'ignored':
        // Heartbeats and other logical messages carry no events; their transaction's commit still acknowledges them.
        return [];
      case 'unexpected':
        throw protocolError(`unexpected ${message.action} change: the slot must only stream inserts into the outbox`);
    }
  }

  private requireOpen(what: string): OpenTransaction {
    if (!this.open) throw protocolError(`${what} outside a transaction`);
    return this.open;
  }
}

function emptySlice(): StreamSlice {
  return { events: [], parked: [], end: null, textLength: 0 };
}

/** The characters of a row's values as they arrived (payload and metadata as JSON text): its size, near enough. */
export function rowText(row: Record<string, unknown>): number {
  let length = 0;
  for (const value of Object.values(row)) if (typeof value === 'string') length += value.length;
  return length;
}

function protocolError(message: string): WalflowError {
  return new WalflowError('message_invalid', `change stream out of order: ${message}`);
}
