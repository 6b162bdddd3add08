import { ReplicationConsumer, type ReplicationConsumerOptions } from '@walflow/cdc';
import type { BatchDispatcher, WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import type { TestDatabase } from '@walflow/testing';
import type { Kysely } from 'kysely';
import pino, { type Logger } from 'pino';

export const silentLogger = pino({ level: 'silent' });

/** The file's test database with walflow's schema and its slot. */
export async function openMigrated(database: TestDatabase): Promise<Kysely<WalflowDatabase>> {
  const db = createDatabase(database.url, silentLogger);
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  return db;
}

/** A consumer of the test database's slot that reconnects within 100 ms; `options` override any of it. */
export function testConsumer(
  database: TestDatabase,
  db: Kysely<WalflowDatabase>,
  dispatcher: BatchDispatcher,
  options: Partial<ReplicationConsumerOptions> = {},
): ReplicationConsumer {
  return new ReplicationConsumer({
    connection: { connectionString: database.url },
    slotName: database.slotName,
    dispatcher,
    db,
    logger: silentLogger,
    reconnect: { initialMs: 20, maxMs: 100 },
    ...options,
  });
}

/** A logger that keeps the message of every warning and error, to see that no session failed. */
export function keptWarnings(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
  return { logger, warnings };
}
