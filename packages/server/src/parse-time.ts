import { WalflowError } from '@walflow/core';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A point in time typed by an operator: ISO-8601, `now`, or relative to now such as `-2h`, `-30m`, `-7d`. */
export function parseTime(text: string, now: Date = new Date()): Date {
  if (text.trim() === 'now') return now;
  const relative = /^-(\d+)([smhdw])$/.exec(text.trim());
  if (relative) return new Date(now.getTime() - Number(relative[1]) * (UNITS[relative[2]!] ?? 0));
  const absolute = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(absolute.getTime())) {
    throw new WalflowError('config_invalid', `not a time: ${JSON.stringify(text)} (use ISO-8601 such as 2026-11-26T12:00:00Z, now, or -30m, -2h, -7d)`);
  }
  return absolute;
}
