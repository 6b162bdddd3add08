import { parseLsn } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { AckTracker } from './ack-tracker.js';

function recorder() {
  const sent: string[] = [];
  return { sent, sender: { acknowledge: (lsn: string) => (sent.push(lsn), Promise.resolve(true)) } };
}

describe('AckTracker', () => {
  it('hands the library lsn - 1, because it reports lsn + 1 to the server', async () => {
    const { sent, sender } = recorder();
    await new AckTracker(sender).confirm(parseLsn('1/0'));
    expect(sent).toEqual(['0/FFFFFFFF']);
  });

  it('never moves backwards, comparing LSNs as numbers', async () => {
    const { sent, sender } = recorder();
    const tracker = new AckTracker(sender);
    await tracker.confirm(parseLsn('1/10'));
    await tracker.confirm(parseLsn('0/FFFFFFF0'));
    await tracker.confirm(parseLsn('1/10'));
    expect(sent).toEqual(['1/F']);
    expect(tracker.confirmedLsn).toBe(parseLsn('1/10'));
  });

  it('repeats the confirmed position when the server asks for a reply', async () => {
    const { sent, sender } = recorder();
    const tracker = new AckTracker(sender);
    await tracker.repeat();
    expect(sent).toEqual([]);
    await tracker.confirm(parseLsn('0/20'));
    await tracker.repeat();
    expect(sent).toEqual(['0/1F', '0/1F']);
  });

  it("answers with the slot's position from the start, before anything is confirmed, and moves only past it", async () => {
    const { sent, sender } = recorder();
    const tracker = new AckTracker(sender, parseLsn('0/40'));
    await tracker.repeat();
    await tracker.confirm(parseLsn('0/30'));
    await tracker.confirm(parseLsn('0/50'));
    expect(sent).toEqual(['0/3F', '0/4F']);
  });
});
