/**
 * The server's recent WAL write rate, from successive samples of its WAL position: what turns the slot's
 * remaining safe WAL size into a time before invalidation. Smoothed, so one burst does not swing it.
 */
export class WalRate {
  private last: { position: number; atMs: number } | null = null;
  private bytesPerSecond: number | null = null;

  /** Records a sample; returns the smoothed rate in bytes per second, or null until two samples exist. */
  observe(position: number, atMs: number): number | null {
    const last = this.last;
    this.last = { position, atMs };
    if (last === null || atMs <= last.atMs || position < last.position) return this.bytesPerSecond;
    const rate = ((position - last.position) * 1000) / (atMs - last.atMs);
    this.bytesPerSecond = this.bytesPerSecond === null ? rate : 0.7 * this.bytesPerSecond + 0.3 * rate;
    return this.bytesPerSecond;
  }
}

/** Seconds until a bounded slot loses WAL it needs at the current rate; null when unbounded or idle. */
export function secondsToInvalidation(safeWalSizeBytes: number | null, bytesPerSecond: number | null): number | null {
  if (safeWalSizeBytes === null || bytesPerSecond === null || bytesPerSecond <= 0) return null;
  return Math.max(0, Math.round(safeWalSizeBytes / bytesPerSecond));
}
