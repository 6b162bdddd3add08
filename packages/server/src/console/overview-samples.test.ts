import { describe, expect, it } from 'vitest';
import { OverviewSamples } from './overview-samples.js';

describe('OverviewSamples', () => {
  it('turns the running total of recorded events into a rate per second between samples', () => {
    const samples = new OverviewSamples();
    samples.record(0, 100, { bytes: 0, seconds: 0 });
    expect(samples.withCurrent(0, 100, { bytes: 0, seconds: 0 })).toEqual([]);
    samples.record(10_000, 150, { bytes: 2048, seconds: 1.5 });
    samples.record(20_000, 150, { bytes: 0, seconds: 0 });
    expect(samples.withCurrent(25_000, 200, { bytes: 10, seconds: 0.1 })).toEqual([
      { at: 10_000, eventsPerSecond: 5, lagBytes: 2048, lagSeconds: 1.5 },
      { at: 20_000, eventsPerSecond: 0, lagBytes: 0, lagSeconds: 0 },
      { at: 25_000, eventsPerSecond: 10, lagBytes: 10, lagSeconds: 0.1 },
    ]);
  });

  it('keeps one hour of 10-second samples', () => {
    const samples = new OverviewSamples();
    for (let n = 0; n <= 400; n++) samples.record(n * 10_000, n, { bytes: n, seconds: 0 });
    const kept = samples.withCurrent(400 * 10_000, 400, { bytes: 0, seconds: 0 });
    expect(kept).toHaveLength(360);
    expect(kept[0]?.lagBytes).toBe(41);
  });
});
