import { describe, expect, it } from 'vitest';
import { WakeableSleep } from './wakeable-sleep.js';

describe('WakeableSleep', () => {
  it('ends a sleep early when woken', async () => {
    const alarm = new WakeableSleep();
    let woke = false;
    const sleeping = alarm.sleep(60_000).then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    alarm.wake();
    await sleeping;
    expect(woke).toBe(true);
  });

  it('keeps a wake with nobody asleep for the next sleep only', async () => {
    const alarm = new WakeableSleep();
    alarm.wake();
    alarm.wake();
    await alarm.sleep(60_000);
    let woke = false;
    void alarm.sleep(20).then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
  });
});
