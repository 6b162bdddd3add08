import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * Whether a host name or address can only mean this machine: `localhost` and its subdomains (RFC 6761; browsers
 * resolve them to loopback themselves), 127.0.0.0/8 and ::1, in any of their spellings.
 */
export function isLoopbackName(host: string): boolean {
  const name = hostName(host);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const family = isIP(name);
  return family !== 0 && LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

/** A host as names compare: lower case, without IPv6 brackets or a trailing dot (`LocalHost.` is `localhost`). */
export function hostName(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** The host of a `Host` header, without its port: `[::1]:8787` → `[::1]`, `localhost:8787` → `localhost`. */
export function hostOfHeader(header: string): string {
  return header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d*$/, '');
}
