import { describe, expect, it } from 'vitest';
import { addressGroup } from './token-attempts.js';

describe('addressGroup', () => {
  it('counts an IPv4 address on its own, IPv4-mapped or not', () => {
    expect(addressGroup('192.0.2.7')).toBe('192.0.2.7');
    expect(addressGroup('::ffff:192.0.2.7')).toBe('192.0.2.7');
  });

  it('counts every address of an IPv6 /64 together, however it is written', () => {
    const group = '20010db800000001/64';
    for (const address of ['2001:db8:0:1::1', '2001:db8:0:1:ffff:ffff:ffff:ffff', '2001:0db8:0000:0001:0:0:0:2', '2001:DB8:0:1::a%eth0', '2001:db8:0:1:0:0:192.0.2.1']) {
      expect(addressGroup(address), address).toBe(group);
    }
    expect(addressGroup('2001:db8:0:2::1')).toBe('20010db800000002/64');
    expect(addressGroup('::1')).toBe('0000000000000000/64');
    expect(addressGroup('2001:db8::')).toBe('20010db800000000/64');
  });

  it('leaves anything else as it is', () => {
    expect(addressGroup('unknown')).toBe('unknown');
  });
});
