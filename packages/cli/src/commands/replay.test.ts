import { describe, expect, it } from 'vitest';
import { progressBar } from './replay.js';

describe('the replay progress bar', () => {
  it('fills as events are replayed, and stays full when more are replayed than were counted', () => {
    expect(progressBar(0, 10, 10)).toBe('[..........]');
    expect(progressBar(5, 10, 10)).toBe('[#####.....]');
    expect(progressBar(10, 10, 10)).toBe('[##########]');
    // Recorded in the range after the count: a bar past its end threw "Invalid count value: -1".
    expect(progressBar(12, 10, 10)).toBe('[##########]');
    expect(progressBar(0, 0, 10)).toBe('[##########]');
  });
});
