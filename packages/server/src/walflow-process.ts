import { ReplicationConsumer, type ConsumerStatus } from '@walflow/cdc';
import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher, PoisonIsolatingDispatcher, RunQueueListener, WorkerPool } from '@walflow/executor';
import { NatsSink, sinkName } from '@walflow/nats-sink';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { leaseShorterThanActions, type WalflowConfig } from './config.js';
import { connectionConfig } from './connection-config.js';
import { createDatabase } from './database.js';
import { ensureEventPartitions } from './event-partitions.js';
import { computeHealth, healthHttpStatus, reportAsOfNow, type HealthReport } from './health-report.js';
import { WalRate } from './wal-rate.js';
import { startHttpServer } from './http-server.js';
import { loadCatalog } from './load-catalog.js';
import { assertSchemaCurrent } from './migrate.js';
import { partsOf } from './process-role.js';
import { warnOfRefusedWorkflows } from './policy-warnings.js';
import { warnOfUncataloguedTypes } from './catalog-warnings.js';
import { startRetention } from './retention.js';
import { WalflowMetrics } from './metrics.js';
import { TimedDispatcher } from './timed-dispatcher.js';
import { startConsole } from './console/start-console.js';

export interface RunningWalflow {
  /** null when the role serves no HTTP (worker). */
  httpPort: number | null;
  /** `stopped`, with the role as the reason, when this process runs no consumer. */
  consumerStatus(): ConsumerStatus;
  db: Kysely<WalflowDatabase>;
  /** Records and acknowledges what was received, finishes runs in hand, closes everything. */
  stop(): Promise<void>;
}

const PARTITION_MAINTENANCE_MS = 6 * 60 * 60 * 1000;
const HEALTH_REFRESH_MS = 2000;
/**
 * Short enough that a standby taking over from a leader cut off from the database is held up by the leader's
 * orphaned transactions for minutes, not hours; far beyond the pauses inside walflow's own transactions (a sink
 * publishing a page, a batch waiting for the one before it to commit). The batch before can itself wait on a lock
 * for as long as an operator holds one on walflow's tables (a VACUUM FULL, say): past this, the waiting batch's
 * session is ended, and the batch recorded again after the stream reconnects, losing nothing.
 */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 600_000;
/** A report not refreshed for this long is served as down: the database has not answered meanwhile. */
const HEALTH_STALE_MS = 5 * HEALTH_REFRESH_MS;

/**
 * The composition root of `walflow start`: consumer → dispatcher → workers, and the HTTP server — all of them,
 * or the parts `config.role` names.
 */
export async function startWalflow(config: WalflowConfig, logger: Logger): Promise<RunningWalflow> {
  const parts = partsOf(config.role, config.workerConcurrency, config.httpPortChosen);
  for (const { name, didYouMean } of config.unknownVariables) {
    logger.warn({ variable: name, didYouMean }, `${name} is not a walflow setting and is ignored${didYouMean === undefined ? '' : `: did you mean ${didYouMean}?`}`);
  }
  const backendPids = new Set<number>();
  const db = createDatabase(config.databaseUrl, logger, {
    max: (parts.workers ? config.workerConcurrency : 0) + 4,
    backendPids,
    idleInTransactionTimeoutMs: IDLE_IN_TRANSACTION_TIMEOUT_MS,
  });
  try {
    await assertSchemaCurrent(db);
    const catalog = !parts.consumer || config.catalogModule === undefined ? undefined : await loadCatalog(config.catalogModule);
    if (catalog !== undefined) await warnOfUncataloguedTypes(db, catalog, logger);
    if (parts.consumer) await ensureEventPartitions(db, logger);
    const metrics = new WalflowMetrics();
    const walRate = new WalRate();
    if (parts.workers) {
      await warnOfRefusedWorkflows(db, { updateFields: config.updateFields }, logger);
      const leaseProblem = leaseShorterThanActions(config);
      if (leaseProblem !== undefined) logger.warn(leaseProblem);
    }
    const workers = !parts.workers ? null : new WorkerPool({
      db,
      observer: metrics.observer,
      logger,
      concurrency: config.workerConcurrency,
      pollIntervalMs: config.workerPollMs,
      leaseMs: config.workerLeaseMs,
      claimBatchSize: config.workerClaimBatch,
      runtime: {
        smtp: config.smtp,
        secrets: config.secrets,
        webhookSigningSecret: config.webhookSigningSecret,
        webhookAllowHosts: config.webhookAllowHosts,
        actionTimeoutMs: config.actionTimeoutMs,
        updateFields: config.updateFields,
      },
    });
    // Runs queued by any process wake this one's workers; runs this process's dispatcher queued wake them directly.
    // Runs queued through this process's own connections woke its workers already.
    const listener = workers && new RunQueueListener({ connection: connectionConfig(config.databaseUrl), logger, ownBackends: backendPids, onRunsQueued: () => workers.notify() });
    // The JetStream sink follows the recorded log where the consumer runs; its lock keeps one publisher per database.
    const sink = !parts.consumer || config.natsSink === undefined ? null : new NatsSink({ db, settings: config.natsSink, logger });
    const consumer = !parts.consumer ? null : new ReplicationConsumer({
      connection: connectionConfig(config.databaseUrl, 'walflow-replication'),
      slotName: config.slotName,
      dispatcher: new TimedDispatcher(
        new PoisonIsolatingDispatcher(
          new Dispatcher({ db, slotName: config.slotName, logger, maxDepth: config.maxDepth, onRunsQueued: (count) => workers?.notify(count) }),
          logger,
        ),
        (seconds) => metrics.observeDispatchDuration(seconds),
      ),
      db,
      catalog,
      logger,
      maxBatchRows: config.batchSize,
      heartbeatMs: config.heartbeatMs,
      standbyPollMs: config.standbyPollMs,
      downRecheckMs: config.downRecheckMs,
      onBatch: (result, batch) => {
        metrics.recordBatch(result, batch);
        if (result.recorded > 0) sink?.notify();
        const { recordedEvents: _events, ...counts } = result;
        logger.debug(counts, 'batch recorded');
      },
    });
    // /health and /metrics serve the last background report, so probes and scrapes never load the database.
    let computed: { report: HealthReport; at: number } | null = null;
    let lastRefreshFailed = false;
    let refreshing = false;
    const refreshHealth = async (): Promise<void> => {
      // One at a time: while the database does not answer, more refreshes would only take more connections.
      if (refreshing) return;
      refreshing = true;
      try {
        const computing = computeHealth(db, { slotName: config.slotName, consumer: consumer?.status, thresholds: config.healthThresholds, walRate,
          // Its three statements end before the race below gives up on them, and their connection goes back to the
          // pool: a refresh given up on still waiting for a lock took a connection of its own at every refresh.
          statementTimeoutMs: Math.floor((HEALTH_STALE_MS - 1000) / 3),
          sink: config.natsSink === undefined ? undefined : { name: sinkName(config.natsSink), status: sink?.status } });
        // A query hung on a dead connection must not keep every later refresh from starting.
        computing.catch(() => undefined);
        const report = await Promise.race([computing, rejectAfter(HEALTH_STALE_MS, 'the health queries did not answer')]);
        computed = { report, at: Date.now() };
        lastRefreshFailed = false;
        metrics.updateFromHealth(report, consumer?.status.role === 'leader');
      } catch (error) {
        lastRefreshFailed = true;
        logger.warn({ err: error }, 'could not refresh the health report');
      } finally {
        refreshing = false;
      }
    };
    const report = (): HealthReport | null => computed && reportAsOfNow(computed.report, Date.now() - computed.at, HEALTH_STALE_MS);
    const databaseAnswered = (): boolean => !lastRefreshFailed && computed !== null && Date.now() - computed.at <= HEALTH_STALE_MS;
    const noConsumer: ConsumerStatus = { state: 'stopped', role: 'standby', reason: `role ${config.role} runs no consumer`, since: new Date() };
    const operatorConsole =
      !parts.console || config.console === undefined
        ? null
        : await startConsole(config.console, { config, logger, metrics, health: report, consumerStatus: () => consumer?.status ?? noConsumer, onRunsQueued: () => workers?.notify() });
    const http = !parts.http ? null : await startHttpServer({
      host: config.httpHost,
      port: config.httpPort,
      allowedHosts: config.httpAllowedHosts,
      logger,
      mounts: operatorConsole === null ? {} : { '/console': operatorConsole.handle },
      routes: {
        '/healthz': () => ({ status: 200, body: { status: 'ok' } }),
        '/health': () => {
          const current = report();
          return current === null ? { status: 503, body: { status: 'down', reason: 'no health report yet' } } : { status: healthHttpStatus(current), body: current };
        },
        '/readyz': () => readiness(databaseAnswered(), consumer?.status),
        '/metrics': async () => {
          // The gauges follow the report as it stands now: a stale one reads down there too.
          const current = report();
          if (current !== null) metrics.updateFromHealth(current, consumer?.status.role === 'leader');
          const { contentType, text } = await metrics.render();
          return { status: 200, body: text, contentType };
        },
      },
    });
    const maintenance = consumer && setInterval(() => void ensureEventPartitions(db, logger), PARTITION_MAINTENANCE_MS);
    maintenance?.unref();
    const retention = consumer && startRetention({ db, logger, retentionDays: config.retentionDays, leading: () => consumer.status.role === 'leader' });
    consumer?.start();
    sink?.start();
    workers?.start();
    listener?.start();
    if (http) await refreshHealth();
    const healthRefresh = http && setInterval(() => void refreshHealth(), HEALTH_REFRESH_MS);
    healthRefresh?.unref();
    logger.info({ role: config.role, parts, slot: config.slotName, httpPort: http?.port ?? null, catalog: config.catalogModule ?? null }, 'walflow started');

    return {
      httpPort: http?.port ?? null,
      db,
      consumerStatus: () => consumer?.status ?? noConsumer,
      async stop() {
        clearInterval(maintenance ?? undefined);
        clearInterval(healthRefresh ?? undefined);
        // In this order, each whatever became of the one before: a part that fails to stop must not leave the HTTP
        // server or the pool open, which would keep the process from ever exiting.
        const parts: [string, () => Promise<void> | undefined][] = [
          ['retention', () => retention?.stop()],
          ['consumer', () => consumer?.stop()],
          ['sink', () => sink?.stop()],
          ['run listener', () => listener?.stop()],
          ['workers', () => workers?.stop(config.shutdownGraceMs)],
          ['HTTP server', () => http?.close()],
          ['console', () => operatorConsole?.close()],
          ['database pool', () => db.destroy()],
        ];
        const failed: { part: string; error: unknown }[] = [];
        for (const [part, stopPart] of parts) {
          try {
            await stopPart();
          } catch (error) {
            logger.error({ err: error, part }, 'could not stop a part of walflow');
            failed.push({ part, error });
          }
        }
        if (failed.length > 0) {
          throw new AggregateError(failed.map(({ error }) => error), `walflow did not stop cleanly: ${failed.map(({ part }) => part).join(', ')} failed`);
        }
        logger.info('walflow stopped');
      },
    };
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

/** Ready when the database answered the last refresh and, on the leader, the stream runs. */
function rejectAfter(ms: number, reason: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${reason} within ${ms} ms`)), ms).unref());
}

function readiness(databaseAnswered: boolean, status: ConsumerStatus | undefined): { status: number; body: unknown } {
  const ready = databaseAnswered && (status?.role !== 'leader' || status.state === 'streaming');
  return { status: ready ? 200 : 503, body: { ready, database: databaseAnswered, role: status?.role ?? null, consumer: status?.state ?? null } };
}
