import { expect } from 'chai';
import { describe, it } from 'mocha';

import { Backoff } from '../../lib/backoff.js';
import { flushMicrotasks, ManualClock } from '../../lib/clock.js';
import { FleetError, terminal } from '../../lib/errors.js';
import { MemoryLogger } from '../../lib/logger.js';
import { ReconcileLoop } from '../../lib/reconcile-loop.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('lib/reconcile-loop', () => {
  it('runs once at start and then every interval', async () => {
    const clock = new ManualClock();
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 1000,
      clock,
      logger: new MemoryLogger(),
      reconcile: () => {
        runs++;
        return Promise.resolve();
      },
    });
    loop.start();
    await loop.idle();
    expect(runs).to.equal(1);
    await clock.advance(999);
    expect(runs).to.equal(1);
    await clock.advance(1);
    await loop.idle();
    expect(runs).to.equal(2);
    await loop.close();
  });

  it('runs on trigger without waiting for the interval', async () => {
    const clock = new ManualClock();
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 60_000,
      clock,
      logger: new MemoryLogger(),
      reconcile: () => {
        runs++;
        return Promise.resolve();
      },
    });
    loop.start();
    await loop.idle();
    loop.trigger();
    await flushMicrotasks();
    await loop.idle();
    expect(runs).to.equal(2);
    await loop.close();
  });

  it('coalesces a burst of triggers during a run into one more run', async () => {
    const clock = new ManualClock();
    let runs = 0;
    let gate = deferred();
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 60_000,
      clock,
      logger: new MemoryLogger(),
      reconcile: async () => {
        runs++;
        await gate.promise;
      },
    });
    loop.start();
    await flushMicrotasks();
    for (let i = 0; i < 50; i++) loop.trigger();
    const first = gate;
    gate = deferred();
    gate.resolve();
    first.resolve();
    await loop.idle();
    expect(runs).to.equal(2);
    await loop.close();
  });

  it('retries a failed run with backoff, sooner than the interval, and logs it', async () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 'engine',
      intervalMs: 10_000,
      clock,
      logger,
      backoff: new Backoff({ initialMs: 100, maxMs: 10_000, random: () => 0.999999 }),
      reconcile: () => {
        runs++;
        if (runs <= 2) return Promise.reject(new FleetError('TIMEOUT', 'etcd slow', { retryable: true }));
        return Promise.resolve();
      },
    });
    loop.start();
    await loop.idle();
    expect(runs).to.equal(1);
    await clock.advance(100);
    await loop.idle();
    expect(runs).to.equal(2);
    await clock.advance(200);
    await loop.idle();
    expect(runs).to.equal(3);
    expect(loop.failures).to.equal(2);
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.fields.loop)).to.deep.equal([
      'engine',
      'engine',
    ]);
    await loop.close();
  });

  it('waits the backoff after a failure even when events trigger meanwhile, coalescing them', async () => {
    const clock = new ManualClock();
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 10_000,
      clock,
      logger: new MemoryLogger(),
      backoff: new Backoff({ initialMs: 400, maxMs: 10_000, random: () => 0.999999 }),
      reconcile: () => {
        runs++;
        if (runs === 1) return Promise.reject(new FleetError('TIMEOUT', 'etcd slow', { retryable: true }));
        return Promise.resolve();
      },
    });
    loop.start();
    await flushMicrotasks();
    expect(runs).to.equal(1);
    // A burst of events during the backoff: no early retry.
    for (let i = 0; i < 20; i++) {
      loop.trigger();
      await clock.advance(10);
    }
    await flushMicrotasks();
    expect(runs).to.equal(1);
    await clock.advance(199);
    await flushMicrotasks();
    expect(runs).to.equal(1);
    // The delay over: one retry covers every event.
    await clock.advance(1);
    await loop.idle();
    expect(runs).to.equal(2);
    // After a success, an event is handled at once again.
    loop.trigger();
    await flushMicrotasks();
    await loop.idle();
    expect(runs).to.equal(3);
    await loop.close();
  });

  it('closes promptly while backing off', async () => {
    const clock = new ManualClock();
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 10_000,
      clock,
      logger: new MemoryLogger(),
      reconcile: () => {
        runs++;
        return Promise.reject(new FleetError('TIMEOUT', 'etcd slow', { retryable: true }));
      },
    });
    loop.start();
    await flushMicrotasks();
    loop.trigger();
    await loop.close();
    await clock.advance(20_000);
    expect(runs).to.equal(1);
  });

  it('does not retry a terminal failure: the next run comes with the next event or the interval', async () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 'agent',
      intervalMs: 10_000,
      clock,
      logger,
      backoff: new Backoff({ initialMs: 100, maxMs: 10_000, random: () => 0.999999 }),
      reconcile: () => {
        runs++;
        if (runs === 1) return Promise.reject(terminal(new FleetError('UNIT_NAME_INVALID', 'bad name')));
        return Promise.resolve();
      },
    });
    loop.start();
    await loop.idle();
    expect(runs).to.equal(1);
    expect(loop.failures).to.equal(1);
    // No backoff retry: well past every backoff delay, nothing has run again.
    await clock.advance(9_999);
    await loop.idle();
    expect(runs).to.equal(1);
    expect(logger.records.map((r) => [r.level, r.message, r.fields.error])).to.deep.equal([
      ['error', 'reconcile failed; not retried until the next change', 'bad name'],
    ]);
    // The safety-net interval runs it again, as after a success.
    await clock.advance(1);
    await loop.idle();
    expect(runs).to.equal(2);
    await loop.close();
  });

  it('runs at once on an event after a terminal failure (no backoff to wait out)', async () => {
    const clock = new ManualClock();
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 10_000,
      clock,
      logger: new MemoryLogger(),
      reconcile: () => {
        runs++;
        return runs === 1 ? Promise.reject(terminal(new Error('no'))) : Promise.resolve();
      },
    });
    loop.start();
    await loop.idle();
    loop.trigger();
    await flushMicrotasks();
    await loop.idle();
    expect(runs).to.equal(2);
    await loop.close();
  });

  it('logs a non-retryable failure as an error', async () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 1000,
      clock,
      logger,
      reconcile: () => Promise.reject(new Error('bug')),
    });
    loop.start();
    await loop.idle();
    expect(logger.records[0]?.level).to.equal('error');
    await loop.close();
  });

  it('aborts the run in flight on close and stops running', async () => {
    const clock = new ManualClock();
    let sawAbort = false;
    let runs = 0;
    const loop = new ReconcileLoop({
      name: 't',
      intervalMs: 1000,
      clock,
      logger: new MemoryLogger(),
      reconcile: (signal) => {
        runs++;
        return new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            sawAbort = true;
            resolve();
          });
        });
      },
    });
    loop.start();
    await flushMicrotasks();
    await loop.close();
    expect(sawAbort).to.equal(true);
    await clock.advance(5000);
    expect(runs).to.equal(1);
  });
});
