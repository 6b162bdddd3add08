import type { Kysely, Selectable } from 'kysely';
import { assertEmailAddress } from './email-address.js';
import { outbox } from './crm-outbox.js';
import { inTransaction } from './in-transaction.js';
import type { CrmDatabase, RecruitPhase, RecruitsTable } from './schema.js';
import { TENANT } from './tenant.js';

export type Recruit = Selectable<RecruitsTable>;

/** Phases a recruit never leaves. */
const FINAL_PHASES: ReadonlySet<RecruitPhase> = new Set(['graduated', 'dropped']);

/** A new recruit in phase `applied` → `recruit.created`. Refuses an address events cannot carry (the agent's user gets it too). */
export async function createRecruit(
  db: Kysely<CrmDatabase>,
  recruit: { name: string; email: string; sponsorId?: string | null },
): Promise<Recruit> {
  return inTransaction(db, async (trx) => {
    const row = await trx
      .insertInto('crm.recruits')
      .values({ name: recruit.name, email: assertEmailAddress(recruit.email), sponsor_id: recruit.sponsorId ?? null })
      .returningAll()
      .executeTakeFirstOrThrow();
    await outbox.emit(trx, {
      type: 'recruit.created',
      tenantId: TENANT,
      aggregateType: 'recruit',
      aggregateId: row.id,
      payload: { recruitId: row.id, name: row.name, email: row.email, phase: row.phase, sponsorId: row.sponsor_id },
    });
    return row;
  });
}

/**
 * Moves a recruit to another phase → `recruit.phase_changed`, and also `recruit.graduated_to_agent` (the recruit
 * becomes an agent with a user account of their own) or `recruit.dropped_out`.
 */
export async function updatePhase(db: Kysely<CrmDatabase>, recruitId: string, to: RecruitPhase): Promise<Recruit> {
  return inTransaction(db, async (trx) => {
    // Locked, so two concurrent changes cannot both read the same `from`.
    const current = await trx.selectFrom('crm.recruits').selectAll().where('id', '=', recruitId).forUpdate().executeTakeFirst();
    if (current === undefined) throw new Error(`no recruit ${recruitId}`);
    const from = current.phase;
    if (from === to) throw new Error(`recruit ${current.name} is already in phase ${to}`);
    if (FINAL_PHASES.has(from)) throw new Error(`recruit ${current.name} has ${from}; the phase cannot change any more`);

    const agent =
      to === 'graduated'
        ? await trx.insertInto('crm.users').values({ name: current.name, email: current.email, role: 'agent' }).returning('id').executeTakeFirstOrThrow()
        : undefined;
    const recruit = await trx
      .updateTable('crm.recruits')
      .set({ phase: to, agent_id: agent?.id ?? current.agent_id, updated_at: new Date() })
      .where('id', '=', recruitId)
      .returningAll()
      .executeTakeFirstOrThrow();

    const event = { tenantId: TENANT, aggregateType: 'recruit', aggregateId: recruit.id } as const;
    await outbox.emit(trx, { ...event, type: 'recruit.phase_changed', payload: { recruitId: recruit.id, name: recruit.name, from, to } });
    if (agent !== undefined) {
      await outbox.emit(trx, {
        ...event,
        type: 'recruit.graduated_to_agent',
        payload: { recruitId: recruit.id, agentId: agent.id, name: recruit.name, email: recruit.email },
      });
    } else if (to === 'dropped') {
      await outbox.emit(trx, { ...event, type: 'recruit.dropped_out', payload: { recruitId: recruit.id, name: recruit.name, from } });
    }
    return recruit;
  });
}
