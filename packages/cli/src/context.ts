import { hostname, userInfo } from 'node:os';
import { assertSchemaCurrent, createDatabase, loadConfig, RECORDING_APPLICATION_NAME, type WalflowConfig } from '@walflow/server';
import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import pino, { type Logger } from 'pino';

export interface CommandContext {
  config: WalflowConfig;
  logger: Logger;
  /** Who runs the command, for the audit log. */
  operator: string;
}

/**
 * Configuration and a logger for one command. `start` logs JSON to stdout; the other commands keep stdout
 * for their output and log to stderr.
 */
export function commandContext(options: { logToStdout: boolean }): CommandContext {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel, base: { service: 'walflow' } }, pino.destination(options.logToStdout ? 1 : 2));
  return { config, logger, operator: config.operator ?? `${userInfo().username}@${hostname()}` };
}

/** The sessions of commands that record no event: following the event log does not wait for their transactions. */
const CLI_APPLICATION_NAME = 'walflow-cli';

/**
 * Runs `work` with a database handle that is always closed; `recordsEvents` for a command that records events.
 * `changesState` for a command that writes walflow's tables: it runs only against a schema of this version, since
 * code and migrations go together (an older CLI's repair, say, would drop the slot and then record as it did).
 */
export async function withDatabase<T>(
  context: CommandContext,
  work: (db: Kysely<WalflowDatabase>) => Promise<T>,
  options: { recordsEvents?: boolean; changesState?: boolean; statementTimeoutMs?: number } = {},
): Promise<T> {
  const applicationName = options.recordsEvents ? RECORDING_APPLICATION_NAME : CLI_APPLICATION_NAME;
  const db = createDatabase(context.config.databaseUrl, context.logger, { max: 2, applicationName, statementTimeoutMs: options.statementTimeoutMs });
  try {
    if (options.changesState) await assertSchemaCurrent(db);
    return await work(db);
  } finally {
    await db.destroy();
  }
}
