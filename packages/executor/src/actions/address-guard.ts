import { parseIpv4, parseIpv6, WalflowError } from '@walflow/core';
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';

/** Resolves a hostname to every address it has; tests pass their own to stay off the network. */
export type ResolveHost = (hostname: string) => Promise<string[]>;

interface Range {
  /** The network as one number: 32 bits for IPv4, 128 for IPv6. */
  network: bigint;
  prefix: number;
  label: string;
}

const IPV4_RANGES: readonly Range[] = [
  ipv4Range('0.0.0.0', 8, 'unspecified'),
  ipv4Range('10.0.0.0', 8, 'private'),
  ipv4Range('100.64.0.0', 10, 'private (carrier-grade NAT)'),
  ipv4Range('127.0.0.0', 8, 'loopback'),
  ipv4Range('169.254.0.0', 16, 'link-local'),
  ipv4Range('172.16.0.0', 12, 'private'),
  ipv4Range('192.0.0.0', 24, 'reserved (IETF protocol assignments)'),
  ipv4Range('192.168.0.0', 16, 'private'),
  ipv4Range('198.18.0.0', 15, 'reserved (benchmarking)'),
  ipv4Range('224.0.0.0', 4, 'multicast'),
  ipv4Range('240.0.0.0', 4, 'reserved'),
];

const IPV6_RANGES: readonly Range[] = [
  { network: 0n, prefix: 128, label: 'unspecified' },
  { network: 1n, prefix: 128, label: 'loopback' },
  { network: 0x0064ff9b0001n << 80n, prefix: 48, label: 'private (local-use NAT64)' },
  // 6to4 carries an IPv4 address of any kind inside, and has long been retired: none is called.
  { network: 0x2002n << 112n, prefix: 16, label: 'reserved (6to4)' },
  { network: 0xfc00n << 112n, prefix: 7, label: 'private' },
  { network: 0xfe80n << 112n, prefix: 10, label: 'link-local' },
  { network: 0xfec0n << 112n, prefix: 10, label: 'private (site-local)' },
  { network: 0xff00n << 112n, prefix: 8, label: 'multicast' },
];

/** IPv6 prefixes whose last 32 bits are an IPv4 address the connection ends up at: mapped, compatible, NAT64. */
const IPV4_CARRIERS: readonly { network: bigint; prefix: number }[] = [
  { network: 0xffffn << 32n, prefix: 96 },
  { network: 0n, prefix: 96 },
  { network: 0x64ff9bn << 96n, prefix: 96 },
];

/**
 * Why an address must not be called from a webhook ('loopback', 'private', …), or undefined for a public one.
 * Anything that is not an IP address counts as non-public.
 */
export function nonPublicReason(ip: string): string | undefined {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const version = isIP(bare);
  if (version === 4) return matchRange(parseIpv4(bare), 32, IPV4_RANGES);
  if (version !== 6) return 'not an IP address';
  const value = parseIpv6(bare);
  const own = matchRange(value, 128, IPV6_RANGES);
  if (own !== undefined) return own;
  const carrier = IPV4_CARRIERS.find((range) => inRange(value, 128, range.network, range.prefix));
  if (carrier === undefined) return undefined;
  const embedded = matchRange(value & 0xffffffffn, 32, IPV4_RANGES);
  return embedded === undefined ? undefined : `${embedded} (IPv4 inside IPv6)`;
}

/** True for private, loopback, link-local, unspecified, multicast and reserved addresses, also IPv4-mapped. */
export function isNonPublicAddress(ip: string): boolean {
  return nonPublicReason(ip) !== undefined;
}

/**
 * Refuses a URL a webhook must not call: a scheme other than http/https, or a host that resolves to any
 * non-public address, unless the hostname or that address is allow-listed. This check comes first, to fail
 * with a clear message before anything is sent; connections then take their addresses from guardedLookup,
 * which checks again the addresses they connect to, so a name that resolves differently the second time (DNS
 * rebinding) gains nothing.
 */
export async function assertPublicDestination(
  url: URL,
  allowHosts: readonly string[],
  options: { resolve?: ResolveHost } = {},
): Promise<void> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WalflowError('action_failed', `webhook URL must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  const hostname = unbracket(url.hostname).toLowerCase();
  const allowed = allowList(allowHosts);
  if (allowed.has(canonicalHost(hostname))) return;
  const addresses = isIP(hostname) === 0 ? await resolveOrFail(options.resolve ?? resolveAll, hostname) : [hostname];
  const refused = refusal(hostname, addresses, allowed);
  if (refused !== undefined) throw refused;
}

/**
 * A `lookup` for node:net connections to webhook hosts: it resolves the name, refuses the connection when any
 * address is not public (unless the host or the address is allow-listed), and hands the connection exactly the
 * addresses it checked.
 */
export function guardedLookup(allowHosts: readonly string[], options: { resolve?: ResolveHost } = {}): LookupFunction {
  const allowed = allowList(allowHosts);
  const resolve = options.resolve ?? resolveAll;
  return (hostname, lookupOptions, callback) => {
    const host = unbracket(hostname).toLowerCase();
    resolveOrFail(resolve, host)
      .then((addresses) => {
        const refused = allowed.has(canonicalHost(host)) ? undefined : refusal(host, addresses, allowed);
        if (refused !== undefined) return callback(refused, '');
        const found: LookupAddress[] = addresses.map((address) => ({ address, family: isIP(address) }));
        const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? found.filter((address) => address.family === lookupOptions.family) : found;
        if (wanted[0] === undefined) return callback(new WalflowError('action_failed', `webhook host ${host} has no IPv${String(lookupOptions.family)} address`), '');
        if (lookupOptions.all) callback(null, wanted);
        else callback(null, wanted[0].address, wanted[0].family);
      })
      .catch((error: unknown) => callback(error as Error, ''));
  };
}

function allowList(allowHosts: readonly string[]): ReadonlySet<string> {
  return new Set(allowHosts.map((host) => canonicalHost(host)));
}

async function resolveOrFail(resolve: ResolveHost, hostname: string): Promise<string[]> {
  let addresses: string[];
  try {
    addresses = await resolve(hostname);
  } catch (error) {
    throw WalflowError.from(error, 'action_failed', `cannot resolve webhook host ${hostname}`);
  }
  if (addresses.length === 0) throw new WalflowError('action_failed', `webhook host ${hostname} has no address`);
  return addresses;
}

/** The refusal of the first address that is not public and not allow-listed, or undefined. */
function refusal(hostname: string, addresses: readonly string[], allowed: ReadonlySet<string>): WalflowError | undefined {
  for (const address of addresses) {
    const reason = nonPublicReason(address);
    if (reason === undefined || allowed.has(canonicalHost(address))) continue;
    const via = address === hostname ? '' : ` (resolves to ${address})`;
    return new WalflowError('action_failed', `webhook host ${hostname}${via} is not a public address (${reason}); allow-list the host to call it`);
  }
  return undefined;
}

async function resolveAll(hostname: string): Promise<string[]> {
  const results = await lookup(hostname, { all: true, verbatim: true });
  return results.map((result) => result.address);
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** One spelling per host so `::1`, `[::1]` and `0:0::1` compare equal in the allow-list. */
function canonicalHost(host: string): string {
  const bare = unbracket(host.trim()).toLowerCase().replace(/\.$/, '');
  return isIP(bare) === 6 ? `v6:${parseIpv6(bare).toString(16)}` : bare;
}

function matchRange(value: bigint, bits: number, ranges: readonly Range[]): string | undefined {
  return ranges.find((range) => inRange(value, bits, range.network, range.prefix))?.label;
}

function inRange(value: bigint, bits: number, network: bigint, prefix: number): boolean {
  const shift = BigInt(bits - prefix);
  return value >> shift === network >> shift;
}

function ipv4Range(address: string, prefix: number, label: string): Range {
  return { network: parseIpv4(address), prefix, label };
}
