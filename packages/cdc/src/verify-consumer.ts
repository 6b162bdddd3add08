import { parseLsn, WalflowError, ZERO_LSN, type Lsn, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { decoderFor, type ChangeDecoder } from './change-decoder.js';
import { assertOutboxPublished } from './outbox-publication.js';
import { inspectSlot, missingSlotError } from './slot.js';

const REPAIR = 'run `walflow repair` to recreate the slot and dispatch what the outbox still holds';

/** A slot walflow may consume. */
export interface VerifiedSlot {
  /** The decoder of the plugin the slot was created with. */
  decoder: ChangeDecoder;
  /** The slot's confirmed position: where the stream will start. */
  confirmedFlush: Lsn;
}

/**
 * Refuses to consume when the slot or the stored checkpoint cannot be trusted: a missing, invalidated or
 * foreign slot; a checkpoint written by another server or timeline, or beyond this server's WAL (a restored
 * backup). A slot *behind* the checkpoint is normal: PostgreSQL 15 forgets acknowledgements on restart.
 */
export async function verifyConsumer(db: Kysely<WalflowDatabase>, slotName: string): Promise<VerifiedSlot> {
  const slot = await inspectSlot(db, slotName);
  if (!slot) throw missingSlotError(slotName);
  const verified = { decoder: decoderFor(slot.plugin, slotName), confirmedFlush: slot.confirmedFlushLsn === null ? ZERO_LSN : parseLsn(slot.confirmedFlushLsn) };
  if (slot.walStatus === 'lost') {
    throw new WalflowError('slot_missing', `replication slot ${slotName} was invalidated (wal_status=lost, max_slot_wal_keep_size exceeded): ${REPAIR}`);
  }
  if (slot.plugin === 'pgoutput') await assertOutboxPublished(db);
  const state = await db
    .selectFrom('walflow.consumer_state')
    .select(['system_identifier', 'timeline_id', 'checkpoint_lsn', 'repair_started_at'])
    .where('slot_name', '=', slotName)
    .executeTakeFirst();
  if (!state) throw new WalflowError('slot_missing', `walflow has no state for slot ${slotName}: run \`walflow migrate\` with WALFLOW_SLOT=${slotName}`);
  if (state.repair_started_at !== null) {
    throw new WalflowError(
      'slot_missing',
      `a walflow repair of slot ${slotName} started at ${state.repair_started_at.toISOString()} and did not finish: its slot starts after outbox rows it had yet to dispatch; run \`walflow repair\` again`,
    );
  }
  // The timeline is the one WAL is written on now, the first 8 hex digits of its segment's file name:
  // pg_control_checkpoint() names the timeline of the last checkpoint, and after a promotion the checkpoint
  // that ends recovery is spread over minutes (PostgreSQL 15), during which it still names the old one.
  const { rows } = await sql<{ system_identifier: string; timeline_id: number; insert_lsn: string }>`
    SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
           ('x' || left(pg_walfile_name(insert_lsn), 8))::bit(32)::int AS timeline_id,
           insert_lsn::text AS insert_lsn
      FROM pg_current_wal_insert_lsn() AS insert_lsn`.execute(db);
  const server = rows[0];
  if (!server) return verified;
  if (state.system_identifier === null || state.timeline_id === null) {
    await db
      .updateTable('walflow.consumer_state')
      .set({ system_identifier: server.system_identifier, timeline_id: server.timeline_id })
      .where('slot_name', '=', slotName)
      .execute();
  } else if (state.system_identifier !== server.system_identifier) {
    throw new WalflowError(
      'wrong_server',
      `the checkpoint of slot ${slotName} was written by database system ${state.system_identifier}, but this server is ${server.system_identifier}: ${REPAIR}`,
    );
  } else if (state.timeline_id !== server.timeline_id) {
    throw new WalflowError('wrong_server', `the server moved from timeline ${state.timeline_id} to ${server.timeline_id} (failover or point-in-time recovery): ${REPAIR}`);
  }
  if (state.checkpoint_lsn !== null && parseLsn(state.checkpoint_lsn) > parseLsn(server.insert_lsn)) {
    throw new WalflowError(
      'wrong_server',
      `the checkpoint of slot ${slotName} (${state.checkpoint_lsn}) is beyond this server's WAL (${server.insert_lsn}); was a backup restored? ${REPAIR}`,
    );
  }
  return verified;
}
