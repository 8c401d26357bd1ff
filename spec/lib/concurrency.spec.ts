import { expect } from 'chai';
import { describe, it } from 'mocha';

import { mapLimit } from '../../lib/concurrency.js';

describe('lib/concurrency: mapLimit', () => {
  it('keeps the order of the items in its results', async () => {
    const out = await mapLimit([30, 10, 20], 3, async (ms) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms * 2;
    });
    expect(out).to.deep.equal([60, 20, 40]);
  });

  it('never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    await mapLimit(
      Array.from({ length: 20 }, (_, i) => i),
      4,
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
      },
    );
    expect(peak).to.equal(4);
  });

  it('runs every item, then throws the first failure in item order', async () => {
    const ran: number[] = [];
    const err: unknown = await mapLimit([1, 2, 3, 4], 2, async (n) => {
      ran.push(n);
      await Promise.resolve();
      if (n === 2 || n === 4) throw new Error(`failed ${n}`);
      return n;
    }).catch((e: unknown) => e);
    expect((err as Error).message).to.equal('failed 2');
    expect(ran.sort()).to.deep.equal([1, 2, 3, 4]);
  });

  it('resolves an empty list', async () => {
    expect(await mapLimit([], 5, () => Promise.resolve(1))).to.deep.equal([]);
  });
});
