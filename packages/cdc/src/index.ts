export { AckTracker, type StandbyStatusSender } from './ack-tracker.js';
export { decoderFor, isSlotPlugin, SLOT_PLUGINS, type ChangeDecoder, type SlotPlugin } from './change-decoder.js';
export type { ChangeMessage } from './change-message.js';
export { mapOutboxRow, type MappedRow, type OutboxRowContext } from './map-outbox-row.js';
export { LeaderLock, type LeaderHandle } from './leader-lock.js';
export { MESSAGE_PREFIX, OUTBOX_PUBLICATION, OUTBOX_SCHEMA, OUTBOX_TABLE } from './outbox-stream.js';
export { pgoutputDecoder, unixMicrosToIso } from './pgoutput-decoder.js';
export { ReplicationConsumer, type ConsumerRole, type ConsumerState, type ConsumerStatus, type ReplicationConsumerOptions } from './replication-consumer.js';
export { verifyConsumer } from './verify-consumer.js';
export {
  assertLogicalWal,
  assertSlotPlugin,
  createSlot,
  ensureOutboxPublication,
  explainSlotError,
  inspectSlot,
  missingSlotError,
  type DecoderChoice,
  type SlotInfo,
} from './slot.js';
export { StreamSession, type StreamSessionOptions } from './stream-session.js';
export { TransactionAssembler, type StreamSlice, type TransactionAssemblerOptions } from './transaction-assembler.js';
export { parseWal2JsonMessage, walTimestampToIso, type Wal2JsonMessage } from './wal2json-messages.js';
export { wal2jsonDecoder } from './wal2json-decoder.js';
