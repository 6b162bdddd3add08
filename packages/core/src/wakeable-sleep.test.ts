import { describe, expect, it } from 'vitest';
import { WakeableSleep } from './wakeable-sleep.js';

describe('WakeableSleep', () => {
  it('ends a sleep early when woken, and a wake with nobody asleep changes nothing', async () => {
    const alarm = new WakeableSleep();
    alarm.wake();
    let woke = false;
    const sleeping = alarm.sleep(60_000).then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    alarm.wake();
    await sleeping;
    expect(woke).toBe(true);
  });
});
