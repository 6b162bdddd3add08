import type { HealthReport } from '../health-report.js';
import type { WalflowMetrics } from '../metrics.js';

/** One point of the overview's charts. */
export interface Sample {
  /** Milliseconds since the epoch. */
  at: number;
  /** Events this process recorded per second since the previous sample. */
  eventsPerSecond: number;
  lagBytes: number;
  lagSeconds: number;
}

export const SAMPLE_INTERVAL_MS = 10_000;
/** One hour of samples. */
const CAPACITY = 360;

/**
 * The last hour of event rate and replication lag, kept in the process: the overview needs no time-series
 * store. The rate comes from the process's running total of recorded events, so it is the leader's rate (a
 * standby records none).
 */
export class OverviewSamples {
  private readonly samples: Sample[] = [];
  private previous: { at: number; eventsRecorded: number } | undefined;

  record(at: number, eventsRecorded: number, lag: { bytes: number; seconds: number }): void {
    const sample = this.sampleAt(at, eventsRecorded, lag);
    this.previous = { at, eventsRecorded };
    if (sample === undefined) return;
    this.samples.push(sample);
    if (this.samples.length > CAPACITY) this.samples.shift();
  }

  /** The kept samples, oldest first, and one for this moment (not kept), so a chart always ends at now. */
  withCurrent(at: number, eventsRecorded: number, lag: { bytes: number; seconds: number }): readonly Sample[] {
    const current = this.sampleAt(at, eventsRecorded, lag);
    return current === undefined ? this.samples : [...this.samples, current];
  }

  private sampleAt(at: number, eventsRecorded: number, lag: { bytes: number; seconds: number }): Sample | undefined {
    const previous = this.previous;
    if (previous === undefined || at <= previous.at) return undefined;
    const eventsPerSecond = Math.max(0, eventsRecorded - previous.eventsRecorded) / ((at - previous.at) / 1000);
    return { at, eventsPerSecond, lagBytes: lag.bytes, lagSeconds: lag.seconds };
  }
}

/** The process's running total of recorded events, summed over event types. */
export async function eventsRecorded(metrics: WalflowMetrics): Promise<number> {
  const counter = await metrics.registry.getSingleMetric('walflow_events_recorded_total')?.get();
  return (counter?.values ?? []).reduce((sum, { value }) => sum + value, 0);
}

/** The lag of the last health report; none before the first. */
export function lagOf(report: HealthReport | null): { bytes: number; seconds: number } {
  return { bytes: report?.lag.bytes ?? 0, seconds: report?.lag.seconds ?? 0 };
}
