import { WalflowError } from './errors.js';

/**
 * A PostgreSQL log sequence number as a 64-bit integer. Text LSNs (`16/B374D848`) must never be compared as
 * strings: `1/0` sorts below `0/FF` that way.
 */
export type Lsn = bigint & { readonly __brand: 'Lsn' };

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export const ZERO_LSN = 0n as Lsn;

export function parseLsn(text: string): Lsn {
  const match = LSN_PATTERN.exec(text);
  if (!match) throw new WalflowError('message_invalid', `not an LSN: ${JSON.stringify(text)}`);
  return ((BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)) as Lsn;
}

export function formatLsn(lsn: Lsn): string {
  const high = (lsn >> 32n).toString(16).toUpperCase();
  const low = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}

export function compareLsn(a: Lsn, b: Lsn): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a >= b ? a : b;
}

export function lsnMinus(lsn: Lsn, bytes: bigint): Lsn {
  return (lsn > bytes ? lsn - bytes : 0n) as Lsn;
}
