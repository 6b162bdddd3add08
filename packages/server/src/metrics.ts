import type { DispatchBatch, DispatchResult } from '@walflow/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HealthReport } from './health-report.js';

const RUN_STATUSES = ['queued', 'running', 'dead'] as const;

/**
 * Event types counted by name; the types first seen after them count together under OTHER_EVENT_TYPES. Prometheus
 * keeps every label value as a series for good, and a type is whatever an application names: unbounded, the
 * series would grow with the process's memory and every scrape.
 */
export const MAX_EVENT_TYPE_LABELS = 500;
/** Not a valid event type, so never one of those counted by name. */
export const OTHER_EVENT_TYPES = '(other types)';

/** Prometheus metrics of one walflow process, in a registry of its own so several processes (tests) never share one. */
export class WalflowMetrics {
  readonly registry = new Registry();
  private readonly lagBytes = this.gauge('walflow_replication_lag_bytes', 'WAL bytes between the current position and the slot’s confirmed flush position');
  private readonly lagSeconds = this.gauge('walflow_replication_lag_seconds', 'Age of the oldest outbox row not yet recorded as an event');
  private readonly retainedBytes = this.gauge('walflow_slot_retained_bytes', 'WAL bytes the replication slot keeps on the server (from restart_lsn)');
  private readonly runs = new Gauge({ name: 'walflow_runs', help: 'Workflow runs by status', labelNames: ['status'], registers: [this.registry] });
  private readonly leader = this.gauge('walflow_leader', '1 while this process holds the replication leadership, else 0');
  private readonly deadLetters = this.gauge('walflow_dead_letters', 'Unresolved outbox rows parked in walflow.dead_letters');
  private readonly healthStatus = this.gauge('walflow_health_status', 'Overall health: 0 ok, 1 degraded, 2 down');
  private readonly sinkPending = this.gauge('walflow_sink_pending_events', 'Recorded events the JetStream sink has not published yet (counted up to 100000)');
  private readonly sinkLagSeconds = this.gauge('walflow_sink_lag_seconds', 'Age of the oldest recorded event the JetStream sink has not published yet');
  private readonly eventsRecorded = new Counter({
    name: 'walflow_events_recorded_total',
    help: `Events recorded for the first time, by event type (the first ${MAX_EVENT_TYPE_LABELS} types seen; the others as "${OTHER_EVENT_TYPES}")`,
    labelNames: ['type'],
    registers: [this.registry],
  });
  /** The event types counted by name (MAX_EVENT_TYPE_LABELS at most). */
  private readonly typesByName = new Set<string>();
  private readonly duplicates = this.counter('walflow_events_duplicate_total', 'Redelivered events that were already recorded');
  private readonly parked = this.counter('walflow_rows_parked_total', 'Outbox rows parked as dead letters');
  private readonly runsQueued = this.counter('walflow_runs_queued_total', 'Workflow runs queued by the dispatcher');
  private readonly batches = this.counter('walflow_dispatch_batches_total', 'Batches handed to the dispatcher and recorded');
  private readonly batchSize = new Histogram({
    name: 'walflow_dispatch_batch_size',
    help: 'Rows (events and parked rows) per recorded batch',
    buckets: [1, 5, 10, 50, 100, 500, 1000, 5000, 20_000],
    registers: [this.registry],
  });
  private readonly batchDuration = new Histogram({
    name: 'walflow_dispatch_batch_duration_seconds',
    help: 'Time to record one batch (events, decisions, runs) in the database',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly commitToRecord = new Histogram({
    name: 'walflow_commit_to_record_seconds',
    help: 'From the event’s WAL commit time to its recording by walflow',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  private readonly decisions = new Counter({ name: 'walflow_decisions_total', help: 'Decisions made, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  private readonly actionDuration = new Histogram({
    name: 'walflow_action_duration_seconds',
    help: 'Time one action took, by action type and result',
    labelNames: ['type', 'result'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly attempts = new Counter({
    name: 'walflow_run_attempts_total',
    help: 'Run attempts by result; "retrying" counts retries, "dead" runs that gave up',
    labelNames: ['result'],
    registers: [this.registry],
  });

  constructor() {
    // Down until a health report says otherwise: a process that never reached the database is not healthy.
    this.healthStatus.set(2);
  }

  /** What the workers report: action durations and attempt results. */
  readonly observer = {
    actionFinished: (type: string, seconds: number, succeeded: boolean): void => {
      this.actionDuration.observe({ type, result: succeeded ? 'succeeded' : 'failed' }, seconds);
    },
    attemptFinished: (result: string): void => {
      this.attempts.inc({ result });
    },
  };

  /** Counters and latencies of one recorded batch (the consumer's onBatch callback). */
  recordBatch(result: DispatchResult, batch: DispatchBatch, now = Date.now()): void {
    this.batches.inc();
    this.batchSize.observe(batch.events.length + batch.parked.length);
    if (result.duplicates > 0) this.duplicates.inc(result.duplicates);
    if (result.parked > 0) this.parked.inc(result.parked);
    if (result.runsQueued > 0) this.runsQueued.inc(result.runsQueued);
    for (const [outcome, count] of Object.entries(result.decisions ?? {})) if (count) this.decisions.inc({ outcome }, count);
    const byType = new Map<string, number>();
    for (const event of result.recordedEvents) {
      const type = this.typeLabel(event.type);
      byType.set(type, (byType.get(type) ?? 0) + 1);
      const committedAt = Date.parse(event.committedAt);
      if (Number.isFinite(committedAt)) this.commitToRecord.observe(Math.max(0, (now - committedAt) / 1000));
    }
    for (const [type, count] of byType) this.eventsRecorded.inc({ type }, count);
  }

  private typeLabel(type: string): string {
    if (this.typesByName.has(type)) return type;
    if (this.typesByName.size >= MAX_EVENT_TYPE_LABELS) return OTHER_EVENT_TYPES;
    this.typesByName.add(type);
    return type;
  }

  observeDispatchDuration(seconds: number): void {
    this.batchDuration.observe(seconds);
  }

  /** Gauges follow the background health refresh, so a scrape never queries the database. */
  updateFromHealth(report: HealthReport, isLeader: boolean): void {
    this.lagBytes.set(report.lag.bytes);
    this.lagSeconds.set(report.lag.seconds);
    this.retainedBytes.set(report.lag.retainedBytes);
    for (const status of RUN_STATUSES) this.runs.set({ status }, report.runs[status]);
    this.leader.set(isLeader ? 1 : 0);
    this.deadLetters.set(report.deadLetters);
    this.healthStatus.set(report.status === 'ok' ? 0 : report.status === 'degraded' ? 1 : 2);
    if (report.sink !== undefined) {
      this.sinkPending.set(report.sink.pending);
      this.sinkLagSeconds.set(report.sink.lagSeconds);
    }
  }

  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }
}
