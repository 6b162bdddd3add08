import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { WorkflowDefinition } from './workflow-definition.js';

/**
 * Guard state written under the definition being replaced, made to mean what the new one says. A cooldown row
 * holds its end (when it began plus the seconds then): with other seconds it is moved by the difference, so a
 * cooldown shortened from a day to a minute ends a minute after its start, not a day; a workflow without a cooldown
 * any more, or with another key, keeps none. A rate-limit window is known by its limit's place in the list and its
 * start: a limit whose period or key changed (or that is gone) starts counting afresh, or its windows would be read
 * as the new limit's (a day's count as the first hour's, both starting at midnight). A changed `limit` alone keeps
 * the counts.
 *
 * Only when the guards change, and then under the recording lock, exclusively: the dispatches in flight, which
 * hold guard rows in no particular order, commit first (deciding with the old definition), and the next ones wait
 * and decide with the new. A replay's page may hold some of its own rows meanwhile: those are passed over, not
 * waited for, so that neither waits for the other.
 */
export async function carryGuardStateOver(db: Kysely<WalflowDatabase>, definition: WorkflowDefinition): Promise<void> {
  const stored = await db
    .selectFrom('walflow.workflows')
    .select(['id', 'cooldown', 'rate_limits'])
    .where('tenant_id', '=', definition.tenant)
    .where('name', '=', definition.name)
    // Two applies at once take turns from here: the second reads what the first wrote, and converts nothing twice.
    .forUpdate()
    .executeTakeFirst();
  if (stored === undefined) return;
  const seconds = definition.cooldown?.seconds ?? null;
  const storedCooldown = stored.cooldown as { seconds?: number; key?: string } | null;
  const storedSeconds = storedCooldown?.seconds ?? null;
  // Cooldowns are rows per key value: under another key, those of the old one would hold back the new key's values.
  const keyChanged = storedSeconds !== null && seconds !== null && (storedCooldown?.key ?? null) !== (definition.cooldown?.key ?? null);
  const windowsOf = (limits: readonly { periodSeconds?: number; key?: string }[]) => JSON.stringify(limits.map(({ periodSeconds, key }) => [periodSeconds, key ?? null]));
  const limits = JSON.stringify(definition.rateLimits);
  const windowsChanged = windowsOf(stored.rate_limits as { periodSeconds?: number; key?: string }[]) !== windowsOf(definition.rateLimits);
  if (seconds === storedSeconds && !keyChanged && !windowsChanged) return;
  await sql`LOCK TABLE walflow.sink_cursors IN EXCLUSIVE MODE`.execute(db);
  const unlocked = (table: string, where: RawBuilder<unknown>) =>
    sql`SELECT ctid FROM ${sql.table(table)} WHERE workflow_id = ${stored.id} AND ${where} FOR UPDATE SKIP LOCKED`;
  if (seconds === null || keyChanged) {
    await sql`DELETE FROM walflow.cooldowns WHERE ctid = ANY (ARRAY(${unlocked('walflow.cooldowns', sql`true`)}))`.execute(db);
  } else if (storedSeconds !== null && seconds !== storedSeconds) {
    await sql`
      UPDATE walflow.cooldowns SET until = until + make_interval(secs => ${seconds - storedSeconds})
       WHERE ctid = ANY (ARRAY(${unlocked('walflow.cooldowns', sql`until > '-infinity'`)}))`.execute(db);
  }
  if (windowsChanged) {
    await sql`
      DELETE FROM walflow.rate_limit_windows
       WHERE ctid = ANY (ARRAY(${unlocked(
         'walflow.rate_limit_windows',
         sql`((${JSON.stringify(stored.rate_limits)}::jsonb -> limit_index -> 'periodSeconds') IS DISTINCT FROM (${limits}::jsonb -> limit_index -> 'periodSeconds')
              OR (${JSON.stringify(stored.rate_limits)}::jsonb -> limit_index -> 'key') IS DISTINCT FROM (${limits}::jsonb -> limit_index -> 'key'))`,
       )}))`.execute(db);
  }
}
