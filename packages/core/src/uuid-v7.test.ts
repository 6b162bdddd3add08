import { describe, expect, it, vi } from 'vitest';
import { uuidV7 } from './uuid-v7.js';

describe('uuidV7', () => {
  it('has the layout of walflow.uuid_v7(): Unix milliseconds first, version 7, the RFC 4122 variant', () => {
    const unixMs = Date.UTC(2026, 10, 27, 3, 30, 0, 123);
    const id = uuidV7(unixMs);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(unixMs);
  });

  it('sorts by the time it was made, and differs within one millisecond', () => {
    expect(uuidV7(1_700_000_000_000) < uuidV7(1_700_000_000_001)).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => uuidV7(1_700_000_000_000))).size).toBe(1000);
  });

  it('made now, increase within one process, within a millisecond and across a clock that stepped back', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidV7());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const clock = vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 60_000);
    try {
      const before = uuidV7();
      clock.mockReturnValue(Date.now() - 60_000);
      expect(uuidV7() > before).toBe(true);
    } finally {
      clock.mockRestore();
    }
  });
});
