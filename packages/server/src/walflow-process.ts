import { ReplicationConsumer, type ConsumerStatus } from '@walflow/cdc';
import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher, PoisonIsolatingDispatcher, WorkerPool } from '@walflow/executor';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WalflowConfig } from './config.js';
import { createDatabase } from './database.js';
import { computeHealth, healthHttpStatus, type HealthReport } from './health-report.js';
import { WalRate } from './wal-rate.js';
import { startHttpServer } from './http-server.js';
import { loadCatalog } from './load-catalog.js';
import { prune } from './prune.js';
import { WalflowMetrics } from './metrics.js';
import { TimedDispatcher } from './timed-dispatcher.js';

export interface RunningWalflow {
  httpPort: number;
  consumerStatus(): ConsumerStatus;
  db: Kysely<WalflowDatabase>;
  /** Records and acknowledges what was received, finishes runs in hand, closes everything. */
  stop(): Promise<void>;
}

const PARTITION_MAINTENANCE_MS = 6 * 60 * 60 * 1000;
const RETENTION_INTERVAL_MS = 24 * 60 * 60 * 1000;
const HEALTH_REFRESH_MS = 2000;

/** The composition root of `walflow start`: consumer → dispatcher → workers, and the HTTP server. */
export async function startWalflow(config: WalflowConfig, logger: Logger): Promise<RunningWalflow> {
  const db = createDatabase(config.databaseUrl, logger, { max: config.workerConcurrency + 4 });
  try {
    const catalog = config.catalogModule === undefined ? undefined : await loadCatalog(config.catalogModule);
    await ensureEventPartitions(db, logger);
    const metrics = new WalflowMetrics();
    const walRate = new WalRate();
    const workers = new WorkerPool({
      db,
      observer: metrics.observer,
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
    const dispatcher = new TimedDispatcher(
      new PoisonIsolatingDispatcher(
        new Dispatcher({ db, slotName: config.slotName, logger, maxDepth: config.maxDepth, onRunsQueued: () => workers.notify() }),
        logger,
      ),
      (seconds) => metrics.observeDispatchDuration(seconds),
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
      onBatch: (result, batch) => {
        metrics.recordBatch(result, batch);
        logger.debug(result, 'batch recorded');
      },
    });
    // /health and /metrics serve the last background report, so probes and scrapes never load the database.
    let report: HealthReport | null = null;
    let databaseAnswered = false;
    const refreshHealth = async (): Promise<void> => {
      try {
        report = await computeHealth(db, { slotName: config.slotName, consumer: consumer.status, thresholds: config.healthThresholds, walRate });
        databaseAnswered = true;
        metrics.updateFromHealth(report, consumer.status.role === 'leader');
      } catch (error) {
        databaseAnswered = false;
        logger.warn({ err: error }, 'could not refresh the health report');
      }
    };
    const http = await startHttpServer({
      host: config.httpHost,
      port: config.httpPort,
      routes: {
        '/healthz': () => ({ status: 200, body: { status: 'ok' } }),
        '/health': () =>
          report === null ? { status: 503, body: { status: 'down', reason: 'no health report yet' } } : { status: healthHttpStatus(report), body: report },
        '/readyz': () => readiness(databaseAnswered, consumer.status),
        '/metrics': async () => {
          const { contentType, text } = await metrics.render();
          return { status: 200, body: text, contentType };
        },
      },
    });
    const maintenance = setInterval(() => void ensureEventPartitions(db, logger), PARTITION_MAINTENANCE_MS);
    maintenance.unref();
    // Once a day, and only on the leader, so several processes do not prune at once.
    const retention = setInterval(() => {
      if (consumer.status.role === 'leader') void pruneOldData(db, config.retentionDays, logger);
    }, RETENTION_INTERVAL_MS);
    retention.unref();
    consumer.start();
    if (config.workerConcurrency > 0) workers.start();
    await refreshHealth();
    const healthRefresh = setInterval(() => void refreshHealth(), HEALTH_REFRESH_MS);
    healthRefresh.unref();
    logger.info({ slot: config.slotName, httpPort: http.port, catalog: config.catalogModule ?? null }, 'walflow started');

    return {
      httpPort: http.port,
      db,
      consumerStatus: () => consumer.status,
      async stop() {
        clearInterval(maintenance);
        clearInterval(retention);
        clearInterval(healthRefresh);
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

/** Ready when the database answered the last refresh and, on the leader, the stream runs. */
function readiness(databaseAnswered: boolean, status: ConsumerStatus): { status: number; body: unknown } {
  const ready = databaseAnswered && (status.role !== 'leader' || status.state === 'streaming');
  return { status: ready ? 200 : 503, body: { ready, database: databaseAnswered, role: status.role, consumer: status.state } };
}

async function pruneOldData(db: Kysely<WalflowDatabase>, retentionDays: number, logger: Logger): Promise<void> {
  try {
    const result = await prune(db, { olderThan: new Date(Date.now() - retentionDays * 86_400_000) });
    logger.info({ ...result, retentionDays }, 'pruned data older than the retention window');
  } catch (error) {
    logger.warn({ err: error }, 'pruning failed; it runs again tomorrow');
  }
}

/** Daily event partitions are created a week ahead; rows never fall into the default partition. */
async function ensureEventPartitions(db: Kysely<WalflowDatabase>, logger: Logger): Promise<void> {
  try {
    await sql`SELECT walflow.ensure_event_partitions()`.execute(db);
  } catch (error) {
    logger.warn({ err: error }, 'could not create event partitions');
  }
}
