import { isUuid, WalflowError, type WalflowDatabase } from '@walflow/core';
import { recordAudit } from '@walflow/server';
import type { Kysely } from 'kysely';
import { commandContext, withDatabase } from '../context.js';

/**
 * Acts on each id in turn, printing what `act` says and auditing it as `action`. Every id is checked to be a uuid
 * first: an id that is not must not leave the rows before it done and those after it not.
 */
export async function actOnIds(ids: string[], noun: string, action: string, act: (db: Kysely<WalflowDatabase>, id: string) => Promise<string>): Promise<void> {
  const bad = ids.find((id) => !isUuid(id));
  if (bad !== undefined) throw new WalflowError('config_invalid', `not a ${noun} id (a uuid): ${bad}`);
  const context = commandContext({ logToStdout: false });
  await withDatabase(context, async (db) => {
    for (const id of ids) {
      process.stdout.write(`${await act(db, id)}\n`);
      await recordAudit(db, { actor: context.operator, action, target: id });
    }
  });
}
