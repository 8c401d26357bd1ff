import { expect } from 'chai';
import { afterEach, describe, it } from 'mocha';

import { Engine } from '../../engine/engine.js';
import { systemClock } from '../../lib/clock.js';
import { MemoryLogger } from '../../lib/logger.js';
import { EventRecorder } from '../../registry/event-recorder.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { ClusterEventInput } from '../../unit/cluster-events.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitRecord } from '../helpers/registry-builders.js';

describe('engine: cluster events', function () {
  this.timeout(10_000);
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  function engine(registry: InMemoryRegistry, events: { record(e: ClusterEventInput): void }): Engine {
    const e = new Engine({
      machineId: 'm1',
      registry,
      clock: systemClock,
      logger: new MemoryLogger(),
      config: { reconcileIntervalMs: 500, leaseTtlSeconds: 5 },
      events,
    });
    closers.push(() => e.close());
    e.start();
    return e;
  }

  it('records leadership, placements, unplaceable units, a lost machine and each move with its reason', async () => {
    const registry = new InMemoryRegistry();
    const m1 = await registry.announceMachine(machineRecord('m1', { role: 'a' }), 10);
    closers.push(() => m1.close());
    await registry.announceMachine(machineRecord('m2', { role: 'a' }), 10);
    const seen: ClusterEventInput[] = [];
    engine(registry, { record: (e) => seen.push(e) });
    await registry.submitUnit(unitRecord('web.service', ['MachineID=m2']), 'launched');
    await registry.submitUnit(unitRecord('free.service'), 'launched');
    await registry.submitUnit(unitRecord('nowhere.service', ['MachineMetadata=role=b']), 'launched');
    await eventually(() => {
      expect(seen.map((e) => `${e.kind} ${e.unit ?? ''}`)).to.include.members([
        'leader-changed ',
        'placed web.service',
        'placed free.service',
        'unplaceable nowhere.service',
      ]);
    });
    expect(seen.find((e) => e.kind === 'placed' && e.unit === 'web.service')?.machine).to.equal('m2');
    expect(seen.find((e) => e.unit === 'nowhere.service')?.message).to.contain('role');
    const free = seen.find((e) => e.kind === 'placed' && e.unit === 'free.service');
    expect(free?.machine).to.equal('m1');

    registry.expireMachine('m1');
    await eventually(() => {
      const lost = seen.find((e) => e.kind === 'machine-lost');
      expect(lost?.machine).to.equal('m1');
      const moved = seen.find((e) => e.kind === 'moved');
      expect(moved).to.deep.include({ unit: 'free.service', machine: 'm2' });
      expect(moved?.message).to.equal('moved from m1 to m2: machine m1 went away');
      expect(seen.indexOf(lost!)).to.be.below(seen.indexOf(moved!));
    });
  });

  it('writes a burst of events in few requests through a recorder, and trims past the count while leading', async () => {
    const registry = new InMemoryRegistry();
    const p = await registry.announceMachine(machineRecord('m1'), 10);
    closers.push(() => p.close());
    for (let i = 0; i < 250; i++) await registry.submitUnit(unitRecord(`u${i}.service`), 'launched');
    let leading = false;
    const recorder = new EventRecorder({
      store: registry,
      reporter: 'm1',
      clock: systemClock,
      logger: new MemoryLogger(),
      retention: { maxAgeMs: 3_600_000 },
      maxCount: 200,
      trimIf: () => leading,
      flushDelayMs: 100,
    });
    closers.push(() => recorder.close());
    const e = engine(registry, recorder);
    await eventually(() => {
      expect(e.leading).to.equal(true);
      leading = true;
    });
    let recordCalls = 0;
    const record = registry.recordEvents.bind(registry);
    registry.recordEvents = (events, retention) => {
      recordCalls++;
      return record(events, retention);
    };
    await eventually(async () => {
      const { events } = await registry.listEvents({ kinds: ['placed'] });
      expect(events.length).to.be.at.least(150);
    });
    await recorder.flush();
    // 250 placements (and a leader change): a few writes, not hundreds.
    expect(recordCalls).to.be.within(1, 10);
    await recorder.flush();
    expect((await registry.listEvents()).events.length).to.be.at.most(200);
  });
});
