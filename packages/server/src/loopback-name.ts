import { isIP } from 'node:net';

/**
 * Whether a host name or address can only mean this machine: `localhost` and its subdomains (RFC 6761; browsers
 * resolve them to loopback themselves), 127.0.0.0/8, ::1 and 127.x mapped into IPv6.
 */
export function isLoopbackName(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || /^::ffff:127\./.test(name);
  return false;
}

/** The host of a `Host` header, without its port: `[::1]:8787` → `[::1]`, `localhost:8787` → `localhost`. */
export function hostOfHeader(header: string): string {
  return header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d*$/, '');
}
