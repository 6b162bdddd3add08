export { AckTracker, type StandbyStatusSender } from './ack-tracker.js';
export { mapOutboxRow, type MappedRow, type OutboxRowContext } from './map-outbox-row.js';
export { ReplicationConsumer, type ConsumerState, type ConsumerStatus, type ReplicationConsumerOptions } from './replication-consumer.js';
export { assertLogicalWal, createSlot, explainSlotError, inspectSlot, missingSlotError, SLOT_PLUGIN, type SlotInfo } from './slot.js';
export { StreamSession, type StreamSessionOptions } from './stream-session.js';
export { TransactionAssembler, type StreamSlice, type TransactionAssemblerOptions } from './transaction-assembler.js';
export { parseWal2JsonMessage, walTimestampToIso, type Wal2JsonMessage } from './wal2json-messages.js';
export { createWal2JsonPlugin, MESSAGE_PREFIX, OUTBOX_SCHEMA, OUTBOX_TABLE } from './wal2json-plugin.js';
