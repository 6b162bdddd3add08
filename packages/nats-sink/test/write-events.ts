import type { WalflowDatabase } from '@walflow/core';
import { emitMany } from '@walflow/outbox';
import type { Kysely } from 'kysely';

export interface Traffic {
  tenant: string;
  /** Transactions per writer. */
  transactions: number;
  /** Events per transaction, spread over `aggregates` aggregates. */
  perTransaction: number;
  /** Writers committing at the same time, so their transactions interleave in commit order. @default 1 */
  writers?: number;
  /** @default 5 */
  aggregates?: number;
  /** Pause between a writer's transactions, so the traffic spans a while. @default 0 */
  pauseMs?: number;
}

/** Commits the traffic through the outbox; returns the ids of the events committed. */
export async function writeEvents(db: Kysely<WalflowDatabase>, traffic: Traffic): Promise<string[]> {
  const { tenant, transactions, perTransaction, writers = 1, aggregates = 5, pauseMs = 0 } = traffic;
  const committed: string[] = [];
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (let tx = 0; tx < transactions; tx++) {
        const events = Array.from({ length: perTransaction }, (__, n) => ({
          type: 'policy.approved',
          tenantId: tenant,
          aggregateType: 'policy',
          aggregateId: `p${(writer + tx + n) % aggregates}`,
          payload: { writer, tx, n },
        }));
        committed.push(...(await db.transaction().execute((trx) => emitMany(trx, events))));
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }),
  );
  return committed;
}
