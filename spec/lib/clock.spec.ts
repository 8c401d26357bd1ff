import { expect } from 'chai';
import { describe, it } from 'mocha';

import { ManualClock, systemClock } from '../../lib/clock.js';
import { isFleetError } from '../../lib/errors.js';

describe('lib/clock', () => {
  describe('ManualClock', () => {
    it('starts at the given time and moves only when advanced', async () => {
      const clock = new ManualClock(1000);
      expect(clock.now()).to.equal(1000);
      await clock.advance(250);
      expect(clock.now()).to.equal(1250);
    });

    it('wakes sleepers in order when their time comes', async () => {
      const clock = new ManualClock();
      const woke: string[] = [];
      void clock.sleep(200).then(() => woke.push('b'));
      void clock.sleep(100).then(() => woke.push('a'));
      void clock.sleep(500).then(() => woke.push('c'));
      await clock.advance(300);
      expect(woke).to.deep.equal(['a', 'b']);
      expect(clock.pendingSleeps).to.equal(1);
    });

    it('rejects a sleep whose signal aborts', async () => {
      const clock = new ManualClock();
      const ac = new AbortController();
      const p = clock.sleep(100, ac.signal);
      ac.abort();
      const err: unknown = await p.catch((e: unknown) => e);
      expect(isFleetError(err, 'ABORTED')).to.equal(true);
      expect(clock.pendingSleeps).to.equal(0);
    });

    it('rejects a sleep whose signal is already aborted', async () => {
      const ac = new AbortController();
      ac.abort();
      const err: unknown = await new ManualClock().sleep(1, ac.signal).catch((e: unknown) => e);
      expect(isFleetError(err, 'ABORTED')).to.equal(true);
    });
  });

  describe('systemClock', () => {
    it('sleeps and can be aborted', async () => {
      await systemClock.sleep(1);
      const ac = new AbortController();
      const p = systemClock.sleep(60_000, ac.signal);
      ac.abort();
      const err: unknown = await p.catch((e: unknown) => e);
      expect(isFleetError(err, 'ABORTED')).to.equal(true);
    });
  });
});
