/** An IPv4 address as a 32-bit number; expects a string net.isIP accepted as version 4. */
export function parseIpv4(address: string): bigint {
  return address.split('.').reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

/**
 * An IPv6 address as a 128-bit number; expects a string net.isIP accepted as version 6 (zone index allowed,
 * dotted IPv4 tail allowed).
 */
export function parseIpv6(address: string): bigint {
  const withoutZone = address.split('%')[0] ?? address;
  const [head = '', tail] = withoutZone.split('::');
  const groups = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [Number.parseInt(group, 16)];
      const v4 = parseIpv4(group);
      return [Number(v4 >> 16n), Number(v4 & 0xffffn)];
    });
  };
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return all.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}
