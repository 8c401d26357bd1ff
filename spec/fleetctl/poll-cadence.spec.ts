import { expect } from 'chai';
import { describe, it } from 'mocha';

import { FLEET_BLOCK_TIMING, pollDelay, pollUntil, type PollResult } from '../../fleetctl/blocking.js';

describe('fleetctl blocking cadence', () => {
  it('pauses 10 ms after the first look, doubling up to 100 ms, within 2 s attempts', () => {
    const pauses = Array.from({ length: 8 }, (_, i) => pollDelay(FLEET_BLOCK_TIMING, i));
    expect(pauses).to.deep.equal([10, 20, 40, 80, 100, 100, 100, 100]);
    expect(FLEET_BLOCK_TIMING.attemptMs).to.equal(2000);
  });

  it('keeps a fixed cadence when no first pause is given, and never exceeds the longest pause', () => {
    expect([0, 1, 5].map((i) => pollDelay({ pollMs: 250, attemptMs: 2000 }, i))).to.deep.equal([
      250, 250, 250,
    ]);
    expect(pollDelay({ firstPollMs: 500, pollMs: 100, attemptMs: 2000 }, 0)).to.equal(100);
    expect(pollDelay({ firstPollMs: 10, pollMs: 100, attemptMs: 2000 }, 10_000)).to.equal(100);
  });

  it('polls at once, then after each pause of the cadence, until done', async () => {
    const slept: number[] = [];
    let polls = 0;
    const result = await pollUntil(
      (): Promise<PollResult<string>> => {
        polls++;
        return Promise.resolve(
          polls === 6 ? { done: true, value: 'there' } : { done: false, why: 'not yet' },
        );
      },
      0,
      FLEET_BLOCK_TIMING,
      (ms) => {
        slept.push(ms);
        return Promise.resolve();
      },
    );
    expect(result).to.deep.equal({ ok: true, value: 'there' });
    expect(polls).to.equal(6);
    expect(slept).to.deep.equal([10, 20, 40, 80, 100]);
  });

  it('ends a wait at once on a fatal poll, without pausing', async () => {
    const slept: number[] = [];
    const result = await pollUntil(
      (): Promise<PollResult<never>> => Promise.resolve({ done: false, fatal: true, why: 'failed' }),
      0,
      FLEET_BLOCK_TIMING,
      (ms) => {
        slept.push(ms);
        return Promise.resolve();
      },
    );
    expect(result).to.deep.equal({ ok: false, timedOut: false, why: 'failed' });
    expect(slept).to.deep.equal([]);
  });
});
