import { ReplicationConsumer, type ConsumerStatus } from '@walflow/cdc';
import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher, PoisonIsolatingDispatcher, WorkerPool } from '@walflow/executor';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WalflowConfig } from './config.js';
import { createDatabase } from './database.js';
import { startHttpServer } from './http-server.js';
import { loadCatalog } from './load-catalog.js';

export interface RunningWalflow {
  httpPort: number;
  consumerStatus(): ConsumerStatus;
  db: Kysely<WalflowDatabase>;
  /** Records and acknowledges what was received, finishes runs in hand, closes everything. */
  stop(): Promise<void>;
}

const PARTITION_MAINTENANCE_MS = 6 * 60 * 60 * 1000;

/** The composition root of `walflow start`: consumer → dispatcher → workers, and the HTTP server. */
export async function startWalflow(config: WalflowConfig, logger: Logger): Promise<RunningWalflow> {
  const db = createDatabase(config.databaseUrl, logger, { max: config.workerConcurrency + 4 });
  try {
    const catalog = config.catalogModule === undefined ? undefined : await loadCatalog(config.catalogModule);
    await ensureEventPartitions(db, logger);
    const workers = new WorkerPool({
      db,
      logger,
      concurrency: config.workerConcurrency,
      pollIntervalMs: config.workerPollMs,
      leaseMs: config.workerLeaseMs,
      runtime: {
        smtp: config.smtp,
        secrets: config.secrets,
        webhookSigningSecret: config.webhookSigningSecret,
        webhookAllowHosts: config.webhookAllowHosts,
        actionTimeoutMs: config.actionTimeoutMs,
      },
    });
    const dispatcher = new PoisonIsolatingDispatcher(
      new Dispatcher({ db, slotName: config.slotName, logger, maxDepth: config.maxDepth, onRunsQueued: () => workers.notify() }),
      logger,
    );
    const consumer = new ReplicationConsumer({
      connection: { connectionString: config.databaseUrl, application_name: 'walflow-replication' },
      slotName: config.slotName,
      dispatcher,
      db,
      catalog,
      logger,
      maxBatchRows: config.batchSize,
      heartbeatMs: config.heartbeatMs,
      standbyPollMs: config.standbyPollMs,
      downRecheckMs: config.downRecheckMs,
      onBatch: (result) => logger.debug(result, 'batch recorded'),
    });
    const http = await startHttpServer({
      host: config.httpHost,
      port: config.httpPort,
      routes: {
        '/healthz': () => ({ status: 200, body: { status: 'ok' } }),
        '/health': () => health(consumer.status),
      },
    });
    const maintenance = setInterval(() => void ensureEventPartitions(db, logger), PARTITION_MAINTENANCE_MS);
    maintenance.unref();
    consumer.start();
    if (config.workerConcurrency > 0) workers.start();
    logger.info({ slot: config.slotName, httpPort: http.port, catalog: config.catalogModule ?? null }, 'walflow started');

    return {
      httpPort: http.port,
      db,
      consumerStatus: () => consumer.status,
      async stop() {
        clearInterval(maintenance);
        await consumer.stop();
        await workers.stop(config.shutdownGraceMs);
        await http.close();
        await db.destroy();
        logger.info('walflow stopped');
      },
    };
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

/** The consumer's view of health; the operations issue adds lag, runs and thresholds. */
function health(status: ConsumerStatus): { status: number; body: unknown } {
  const state = status.state === 'down' ? 'down' : status.state === 'streaming' || status.state === 'standby' ? 'ok' : 'degraded';
  return {
    status: state === 'down' ? 503 : 200,
    body: { status: state, role: status.role, consumer: { state: status.state, reason: status.reason ?? null, since: status.since.toISOString() } },
  };
}

/** Daily event partitions are created a week ahead; rows never fall into the default partition. */
async function ensureEventPartitions(db: Kysely<WalflowDatabase>, logger: Logger): Promise<void> {
  try {
    await sql`SELECT walflow.ensure_event_partitions()`.execute(db);
  } catch (error) {
    logger.warn({ err: error }, 'could not create event partitions');
  }
}
