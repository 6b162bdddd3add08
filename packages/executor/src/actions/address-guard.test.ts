import { isWalflowError } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { assertPublicDestination, isNonPublicAddress, nonPublicReason, type ResolveHost } from './address-guard.js';

describe('isNonPublicAddress', () => {
  it.each([
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['192.168.1.10', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['100.64.0.1', 'private (carrier-grade NAT)'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:7f00:1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:10.1.2.3', 'private (IPv4 inside IPv6)'],
    ['::ffff:169.254.169.254', 'link-local (IPv4 inside IPv6)'],
    ['::ffff:0.0.0.0', 'unspecified (IPv4 inside IPv6)'],
    ['::127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['64:ff9b::a9fe:a9fe', 'link-local (IPv4 inside IPv6)'],
    ['192.0.0.170', 'reserved (IETF protocol assignments)'],
    ['198.18.0.1', 'reserved (benchmarking)'],
    ['198.19.255.254', 'reserved (benchmarking)'],
    ['64:ff9b:1::a00:1', 'private (local-use NAT64)'],
    ['2002:7f00:1::1', 'reserved (6to4)'],
    ['fec0::1', 'private (site-local)'],
    ['[::1]', 'loopback'],
    ['localhost', 'not an IP address'],
  ])('refuses %s (%s)', (ip, reason) => {
    expect(isNonPublicAddress(ip)).toBe(true);
    expect(nonPublicReason(ip)).toBe(reason);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.15.255.255',
    '172.32.0.1',
    '192.169.0.1',
    '169.253.255.255',
    '100.128.0.1',
    '11.0.0.1',
    '2001:4860:4860::8888',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    'fbff::1',
    '2003::1',
    '2001::1',
    '64:ff9b:2::1',
    '192.0.1.1',
    '198.17.255.255',
    '198.20.0.1',
  ])('accepts %s', (ip) => {
    expect(isNonPublicAddress(ip)).toBe(false);
  });
});

describe('assertPublicDestination', () => {
  const resolveTo =
    (addresses: string[]): ResolveHost =>
    () =>
      Promise.resolve(addresses);
  const noNetwork: ResolveHost = (hostname) => Promise.reject(new Error(`unexpected lookup of ${hostname}`));

  async function refusal(promise: Promise<void>): Promise<Error> {
    const error: unknown = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isWalflowError(error, 'action_failed')).toBe(true);
    return error as Error;
  }

  it('refuses schemes other than http and https', async () => {
    for (const url of ['ftp://example.com/', 'file:///etc/passwd', 'gopher://example.com/']) {
      const error = await refusal(assertPublicDestination(new URL(url), [], { resolve: noNetwork }));
      expect(error.message).toMatch(/must use http or https/);
    }
  });

  it('refuses IP literals in non-public ranges without resolving them', async () => {
    for (const url of ['http://127.0.0.1:8080/', 'http://169.254.169.254/latest', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://0x7f.1/', 'http://2130706433/']) {
      const error = await refusal(assertPublicDestination(new URL(url), [], { resolve: noNetwork }));
      expect(error.message).toMatch(/is not a public address/);
    }
  });

  it('refuses a hostname when any of its addresses is not public', async () => {
    const error = await refusal(assertPublicDestination(new URL('https://hooks.example.com/x'), [], { resolve: resolveTo(['93.184.216.34', '10.0.0.7']) }));
    expect(error.message).toBe(
      'webhook host hooks.example.com (resolves to 10.0.0.7) is not a public address (private); allow-list the host to call it',
    );
  });

  it('accepts public destinations', async () => {
    await assertPublicDestination(new URL('https://hooks.example.com/x'), [], { resolve: resolveTo(['93.184.216.34', '2606:2800:220:1::1']) });
    await assertPublicDestination(new URL('http://8.8.8.8/'), [], { resolve: noNetwork });
  });

  it('accepts an allow-listed hostname or address', async () => {
    await assertPublicDestination(new URL('http://localhost:3000/'), ['LOCALHOST'], { resolve: noNetwork });
    await assertPublicDestination(new URL('http://127.0.0.1:3000/'), ['127.0.0.1'], { resolve: noNetwork });
    await assertPublicDestination(new URL('http://[::1]:3000/'), ['0:0::1'], { resolve: noNetwork });
    await assertPublicDestination(new URL('http://internal.test/'), ['10.0.0.7'], { resolve: resolveTo(['10.0.0.7']) });
    await refusal(assertPublicDestination(new URL('http://internal.test/'), ['10.0.0.7'], { resolve: resolveTo(['10.0.0.7', '10.0.0.8']) }));
  });

  it('fails clearly when the host does not resolve', async () => {
    const error = await refusal(assertPublicDestination(new URL('http://nowhere.test/'), [], { resolve: () => Promise.reject(new Error('getaddrinfo ENOTFOUND nowhere.test')) }));
    expect(error.message).toBe('cannot resolve webhook host nowhere.test: getaddrinfo ENOTFOUND nowhere.test');
  });
});
