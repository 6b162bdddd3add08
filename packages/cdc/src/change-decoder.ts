import { WalflowError } from '@walflow/core';
import type { LogicalReplicationService } from 'pg-logical-replication';
import type { ChangeMessage } from './change-message.js';
import { pgoutputDecoder } from './pgoutput-decoder.js';
import { wal2jsonDecoder } from './wal2json-decoder.js';

/** The output plugins walflow can read a slot with. */
export const SLOT_PLUGINS = ['wal2json', 'pgoutput'] as const;
export type SlotPlugin = (typeof SLOT_PLUGINS)[number];

/** The library does not export its plugin base class; this is the type `subscribe` takes. */
type OutputPlugin = Parameters<LogicalReplicationService['subscribe']>[0];

/** Turns one output plugin's messages into change messages. */
export interface ChangeDecoder {
  readonly plugin: SlotPlugin;
  /** The plugin with walflow's options, for START_REPLICATION. */
  createPlugin(): OutputPlugin;
  decode(raw: unknown): ChangeMessage;
}

export function isSlotPlugin(plugin: string | null): plugin is SlotPlugin {
  return (SLOT_PLUGINS as readonly (string | null)[]).includes(plugin);
}

/** A slot is always read with the plugin it was created with. */
export function decoderFor(plugin: string | null, slotName: string): ChangeDecoder {
  if (plugin === 'wal2json') return wal2jsonDecoder;
  if (plugin === 'pgoutput') return pgoutputDecoder;
  throw new WalflowError(
    'slot_plugin_not_allowed',
    `replication slot ${slotName} uses the ${plugin ?? 'no'} plugin; walflow reads slots created with ${SLOT_PLUGINS.join(' or ')}`,
  );
}
