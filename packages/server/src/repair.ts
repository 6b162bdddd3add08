import { assertSlotName, parseLsn, WalflowError, type EventCatalog, type WalflowDatabase } from '@walflow/core';
import { ensureOutboxPublication, inspectSlot, isSlotPlugin, LeaderLock, mapOutboxRow, type DecoderChoice, type SlotPlugin } from '@walflow/cdc';
import { Dispatcher, PoisonIsolatingDispatcher } from '@walflow/executor';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { connectionConfig } from './connection-config.js';
import { requireEventPartitions } from './event-partitions.js';

export interface RepairOptions {
  db: Kysely<WalflowDatabase>;
  databaseUrl: string;
  slotName: string;
  logger: Logger;
  catalog?: EventCatalog | undefined;
  /** The new slot's plugin; `auto` keeps the plugin the slot had (or was migrated with). @default 'auto' */
  decoder?: DecoderChoice | undefined;
  /** @default 8 */
  maxDepth?: number;
  /** Outbox rows read and dispatched at a time. @default 1000 */
  pageSize?: number;
}

export interface RepairResult {
  droppedSlot: boolean;
  consistentPoint: string;
  plugin: SlotPlugin;
  recovered: number;
  parked: number;
}

interface OutboxCursor {
  createdAt: string;
  id: string;
}

/** An outbox row with every column as text, the way wal2json prints it. */
type OutboxRow = Record<string, string | null> & { id: string; created_at: string };

/**
 * Recreates a lost or invalidated slot without losing an event. Holding the leader lock (so nothing streams),
 * it drops the broken slot and creates a new one that exports its snapshot. The outbox rows visible in that
 * snapshot are exactly the committed events never recorded (the dispatcher deletes what it records); they go
 * through the normal dispatcher, in outbox order, flagged as recovered. Everything committed later arrives
 * through the new slot.
 */
export async function repairSlot(options: RepairOptions): Promise<RepairResult> {
  const { db, databaseUrl, logger } = options;
  const slotName = assertSlotName(options.slotName);
  const leader = await new LeaderLock(connectionConfig(databaseUrl), slotName, logger).tryAcquire();
  if (!leader) {
    throw new WalflowError('leader_busy', `another walflow process leads slot ${slotName}: stop it (walflow start) and run repair again`);
  }
  const replication = new pg.Client({ ...connectionConfig(databaseUrl), replication: 'database' } as pg.ClientConfig);
  replication.on('error', (error) => logger.warn({ err: error }, 'repair replication connection failed'));
  let slotCreated = false;
  try {
    const existing = await inspectSlot(db, slotName);
    if (existing?.active) throw new WalflowError('leader_busy', `slot ${slotName} is in use by another connection; stop it first`);
    const plugin = await choosePlugin(db, slotName, existing?.plugin ?? null, options.decoder ?? 'auto');
    if (existing) await sql`SELECT pg_drop_replication_slot(${slotName})`.execute(db);
    if (plugin === 'pgoutput') await ensureOutboxPublication(db);
    // Before the slot exists: a repair that dies before its end leaves a mark the consumer refuses to stream past,
    // on a slot walflow has not known before too (a WALFLOW_SLOT changed, say), which has no row yet.
    await db
      .insertInto('walflow.consumer_state')
      .values({ slot_name: slotName, plugin, repair_started_at: sql`now()` })
      .onConflict((conflict) => conflict.column('slot_name').doUpdateSet({ repair_started_at: sql`now()` }))
      .execute();

    await requireEventPartitions(db);
    await replication.connect();
    // The exported snapshot stays valid while this connection runs no other command.
    const created = await replication.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT "${slotName}" LOGICAL ${plugin} (SNAPSHOT 'export')`,
    );
    slotCreated = true;
    // When the slot began to stream, not when the backlog is dispatched: rows written meanwhile reach it, and the
    // consumer's start-up check takes only rows older than this for ones no slot will stream.
    const { rows: [streamingSince] } = await sql<{ at: Date }>`SELECT clock_timestamp() AS at`.execute(db);
    const { consistent_point: consistentPoint, snapshot_name: snapshot } = created.rows[0]!;
    logger.info({ slot: slotName, consistentPoint }, 'replication slot recreated');

    const dispatcher = new PoisonIsolatingDispatcher(new Dispatcher({ db, slotName, logger, maxDepth: options.maxDepth }), logger);
    const totals = await db.connection().execute(async (conn) => {
      await sql`BEGIN ISOLATION LEVEL REPEATABLE READ`.execute(conn);
      try {
        await sql`SET TRANSACTION SNAPSHOT ${sql.lit(snapshot)}`.execute(conn);
        const counted = { recovered: 0, parked: 0 };
        let after: OutboxCursor | null = null;
        // Recovered events share one commit position; their place after it is their outbox order, across pages,
        // which is the order workers run them in for an aggregate.
        let position = 0;
        for (;;) {
          const cursor: OutboxCursor | null = after;
          const { rows }: { rows: OutboxRow[] } = await sql<OutboxRow>`
            SELECT id::text, tenant_id, event_type, aggregate_type, aggregate_id, payload::text, metadata::text,
                   to_json(created_at) #>> '{}' AS created_at
              FROM walflow.outbox
             WHERE ${cursor === null ? sql`true` : sql`(created_at, id) > (${cursor.createdAt}::timestamptz, ${cursor.id}::uuid)`}
             ORDER BY created_at, id
             LIMIT ${options.pageSize ?? 1000}`.execute(conn);
          if (rows.length === 0) break;
          const events = [];
          const parked = [];
          for (const row of rows) {
            const mapped = mapOutboxRow(row, {
              commit: { xid: '0', commitLsn: parseLsn(consistentPoint), committedAt: row.created_at },
              position: position++,
              catalog: options.catalog,
            });
            if (mapped.kind === 'event') events.push(mapped.event);
            else parked.push(mapped.row);
          }
          const result = await dispatcher.dispatch({ events, parked, checkpoint: null, recovered: true });
          counted.recovered += result.recorded;
          counted.parked += result.parked;
          const last: OutboxRow = rows[rows.length - 1]!;
          after = { createdAt: last.created_at, id: last.id };
        }
        await sql`COMMIT`.execute(conn);
        return counted;
      } catch (error) {
        await sql`ROLLBACK`.execute(conn);
        throw error;
      }
    });
    await db
      .updateTable('walflow.consumer_state')
      .set({
        plugin,
        slot_created_at: streamingSince!.at,
        slot_created_lsn: consistentPoint,
        checkpoint_lsn: null,
        system_identifier: null,
        timeline_id: null,
        repaired_at: sql`now()`,
        repair_started_at: null,
        updated_at: sql`now()`,
      })
      .where('slot_name', '=', slotName)
      .execute();
    return { droppedSlot: existing !== null, consistentPoint, plugin, ...totals };
  } catch (error) {
    if (!slotCreated) throw error;
    // The new slot starts after the outbox rows not yet dispatched: a consumer streaming from it would never see
    // them. Without it the consumer stays down, saying to repair, and the next repair takes them up.
    await replication.end().catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    try {
      await sql`SELECT pg_drop_replication_slot(${slotName})`.execute(db);
    } catch (dropError) {
      logger.error({ err: dropError, slot: slotName }, 'could not drop the slot of a repair that did not finish: run walflow repair again before walflow start');
    }
    throw new WalflowError('replication_failed', `repair did not finish (${reason}): run walflow repair again`, { cause: error });
  } finally {
    await replication.end().catch(() => undefined);
    await leader.release();
  }
}

/** An explicit choice wins; `auto` keeps the lost slot's plugin, else the one recorded when it was migrated. */
async function choosePlugin(db: Kysely<WalflowDatabase>, slotName: string, existing: string | null, choice: DecoderChoice): Promise<SlotPlugin> {
  if (choice !== 'auto') return choice;
  if (isSlotPlugin(existing)) return existing;
  const state = await db.selectFrom('walflow.consumer_state').select('plugin').where('slot_name', '=', slotName).executeTakeFirst();
  const recorded = state?.plugin ?? null;
  return isSlotPlugin(recorded) ? recorded : 'wal2json';
}
