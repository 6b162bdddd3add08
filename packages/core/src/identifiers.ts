import { WalflowError } from './errors.js';

/** Slot names are spliced into replication commands, so only PostgreSQL's own slot alphabet is accepted. */
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

export function assertSlotName(name: string): string {
  if (!SLOT_NAME.test(name)) {
    throw new WalflowError(
      'identifier_invalid',
      `invalid replication slot name ${JSON.stringify(name)}: use 1-63 lower-case letters, digits or underscores`,
    );
  }
  return name;
}
