import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';
import { EventEmitter } from 'node:events';

import { handleSignals, type SignalTarget } from '../../fleetd/signals.js';
import { ManualClock, flushMicrotasks } from '../../lib/clock.js';
import { FleetError } from '../../lib/errors.js';
import { MemoryLogger } from '../../lib/logger.js';

/** A daemon whose stop and reload finish when the test says so. */
class FakeDaemon implements SignalTarget {
  stops = 0;
  reloads = 0;
  private finishStop: (() => void) | undefined;
  reloadResult: Promise<void> = Promise.resolve();

  stop(): Promise<void> {
    this.stops++;
    return new Promise((resolve) => (this.finishStop = resolve));
  }
  reload(): Promise<void> {
    this.reloads++;
    return this.reloadResult;
  }
  status(): Record<string, unknown> {
    return { state: 'running', machineId: 'm1' };
  }
  stopped(): void {
    this.finishStop?.();
  }
}

describe('fleetd/signals: the signal policy', () => {
  let source: EventEmitter;
  let clock: ManualClock;
  let daemon: FakeDaemon;
  let logger: MemoryLogger;
  let exits: number[];
  let uninstall: () => void;

  beforeEach(() => {
    source = new EventEmitter();
    clock = new ManualClock();
    daemon = new FakeDaemon();
    logger = new MemoryLogger();
    exits = [];
    uninstall = handleSignals({ source, target: daemon, logger, clock, exit: (code) => exits.push(code) });
  });

  afterEach(() => {
    uninstall();
  });

  const messages = (): string[] => logger.records.map((r) => r.message);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`stops gracefully on ${signal} and exits 0 when stopped`, async () => {
      source.emit(signal);
      expect(daemon.stops).to.equal(1);
      expect(messages()).to.deep.equal(['Gracefully shutting down']);
      await flushMicrotasks();
      expect(exits).to.deep.equal([]);
      daemon.stopped();
      await flushMicrotasks();
      expect(exits).to.deep.equal([0]);
    });
  }

  it('forces exit 1 on a second stop signal', async () => {
    source.emit('SIGTERM');
    source.emit('SIGINT');
    expect(exits).to.deep.equal([1]);
    expect(daemon.stops).to.equal(1);
    daemon.stopped();
    await flushMicrotasks();
    expect(exits).to.deep.equal([1]);
  });

  it('forces exit 1 when stopping takes 30 s', async () => {
    source.emit('SIGTERM');
    await clock.advance(29_999);
    expect(exits).to.deep.equal([]);
    await clock.advance(1);
    expect(exits).to.deep.equal([1]);
    expect(messages()).to.include('shutdown did not finish in time; forcing exit');
  });

  it('reloads on SIGHUP', async () => {
    source.emit('SIGHUP');
    source.emit('SIGHUP');
    await flushMicrotasks();
    expect(daemon.reloads).to.equal(2);
    expect(exits).to.deep.equal([]);
  });

  it('exits 1 when a reload leaves the daemon unable to go on', async () => {
    daemon.reloadResult = Promise.reject(new FleetError('SYSTEMD_FAILED', 'refused'));
    source.emit('SIGHUP');
    await flushMicrotasks();
    expect(exits).to.deep.equal([1]);
    expect(logger.records.at(-1)?.fields).to.deep.equal({ error: 'refused' });
  });

  it('ignores SIGHUP while shutting down', async () => {
    source.emit('SIGTERM');
    source.emit('SIGHUP');
    await flushMicrotasks();
    expect(daemon.reloads).to.equal(0);
    expect(messages()).to.include('SIGHUP ignored: shutting down');
  });

  it('dumps the state on SIGUSR1', () => {
    source.emit('SIGUSR1');
    expect(logger.records).to.deep.equal([
      { level: 'info', message: 'Dumping server state', fields: { state: 'running', machineId: 'm1' } },
    ]);
  });

  it('removes its handlers when uninstalled', () => {
    uninstall();
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1'])
      expect(source.listenerCount(s), s).to.equal(0);
  });
});
