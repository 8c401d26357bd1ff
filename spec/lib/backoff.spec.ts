import { expect } from 'chai';
import { describe, it } from 'mocha';

import { Backoff } from '../../lib/backoff.js';

describe('lib/backoff', () => {
  it('doubles the ceiling each failure, jittering in its upper half', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 10_000, random: () => 0.999999 });
    expect([b.next(), b.next(), b.next()]).to.deep.equal([100, 200, 400]);
    const low = new Backoff({ initialMs: 100, maxMs: 10_000, random: () => 0 });
    expect([low.next(), low.next(), low.next()]).to.deep.equal([50, 100, 200]);
  });

  it('never exceeds the maximum', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    const delays = Array.from({ length: 20 }, () => b.next());
    expect(Math.max(...delays)).to.equal(1000);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000, random: () => 0.999999 });
    b.next();
    b.next();
    expect(b.failures).to.equal(2);
    b.reset();
    expect(b.next()).to.equal(10);
  });
});
