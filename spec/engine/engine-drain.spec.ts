import { expect } from 'chai';
import { afterEach, beforeEach, describe, it } from 'mocha';

import { Engine, type EngineConfig } from '../../engine/engine.js';
import { systemClock } from '../../lib/clock.js';
import { MemoryLogger } from '../../lib/logger.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { MachinePresence } from '../../registry/registry.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitRecord, unitState } from '../helpers/registry-builders.js';

const config: EngineConfig = { reconcileIntervalMs: 2000, leaseTtlSeconds: 10 };

/**
 * The engine driving drains over the in-memory registry, with stand-in agents that report a unit
 * active where it is scheduled (and nothing elsewhere) a few milliseconds after each change.
 */
describe('engine/engine: drains', () => {
  let registry: InMemoryRegistry;
  let engines: Engine[];
  let presences: Map<string, MachinePresence>;
  let agents: ReturnType<typeof setInterval> | undefined;

  beforeEach(async () => {
    registry = new InMemoryRegistry();
    engines = [];
    presences = new Map();
    for (const id of ['m1', 'm2', 'm3'])
      presences.set(id, await registry.announceMachine(machineRecord(id), 10));
    agents = setInterval(() => {
      void reportStates();
    }, 10);
  });

  afterEach(async () => {
    clearInterval(agents);
    for (const e of engines) await e.close();
  });

  /** What agents would report: each scheduled unit active on its machine, gone elsewhere. */
  async function reportStates(): Promise<void> {
    const schedule = await registry.listSchedule();
    const states = await registry.listUnitStates();
    for (const s of states) {
      if (!schedule.some((p) => p.unit === s.unit && p.machine === s.machine)) {
        await presences.get(s.machine)?.removeUnitState(s.unit);
      }
    }
    for (const p of schedule) {
      if (states.some((s) => s.unit === p.unit && s.machine === p.machine && s.hash === p.hash)) continue;
      await presences.get(p.machine)?.publishUnitState(unitState(p.unit, p.machine, { hash: p.hash }));
    }
  }

  function startEngine(machineId: string): Engine {
    const engine = new Engine({
      machineId,
      registry,
      clock: systemClock,
      logger: new MemoryLogger(),
      config,
    });
    engine.start();
    engines.push(engine);
    return engine;
  }

  const mark = (machine: string, maxParallel = 1) => ({ machine, maxParallel, force: false, requestedAt: 0 });
  const on = async (machine: string) =>
    (await registry.listSchedule()).filter((p) => p.machine === machine).map((p) => p.unit);

  it('drains a machine one unit at a time, and goes on under the next leader', async () => {
    const first = startEngine('m1');
    startEngine('m2');
    // Everything on m1: the others are drained while the units start.
    await registry.setDrain(mark('m2'));
    await registry.setDrain(mark('m3'));
    const names = ['a.service', 'b.service', 'c.service', 'd.service'];
    for (const n of names) await registry.submitUnit(unitRecord(n), 'launched');
    await eventually(async () => expect(await on('m1')).to.deep.equal(names));
    await registry.clearDrain('m2');
    await registry.clearDrain('m3');

    await registry.setDrain(mark('m1'));
    let maxMoving = 0;
    const watch = setInterval(() => {
      void registry.getDrain('m1').then((d) => {
        maxMoving = Math.max(maxMoving, Object.keys(d?.progress?.moving ?? {}).length);
      });
    }, 2);
    try {
      await eventually(
        async () => expect((await registry.getDrain('m1'))?.progress?.moved).to.have.length(2),
        {
          timeoutMs: 5000,
        },
      );
      await first.close(); // leadership goes to m2's engine, mid-drain
      await eventually(
        async () => expect((await registry.getDrain('m1'))?.progress?.state).to.equal('drained'),
        { timeoutMs: 5000 },
      );
    } finally {
      clearInterval(watch);
    }
    expect(await on('m1')).to.deep.equal([]);
    expect((await registry.getDrain('m1'))?.progress?.moved).to.deep.equal(names);
    expect(maxMoving).to.equal(1);
  });

  it('finishes a drain of an empty machine again after an undrain', async () => {
    startEngine('m1');
    await registry.setDrain(mark('m3'));
    await eventually(async () =>
      expect((await registry.getDrain('m3'))?.progress?.state).to.equal('drained'),
    );
    await registry.clearDrain('m3');
    await registry.setDrain(mark('m3'));
    await eventually(async () =>
      expect((await registry.getDrain('m3'))?.progress?.state).to.equal('drained'),
    );
  });

  it('places no new unit on a draining machine', async () => {
    startEngine('m1');
    await registry.setDrain(mark('m1'));
    await registry.setDrain(mark('m2'));
    for (const n of ['x.service', 'y.service', 'z.service'])
      await registry.submitUnit(unitRecord(n), 'launched');
    await eventually(async () =>
      expect(await on('m3')).to.deep.equal(['x.service', 'y.service', 'z.service']),
    );
    await registry.submitUnit(unitRecord('pin.service', ['MachineID=m1']), 'launched');
    await eventually(async () =>
      expect(await registry.getUnplaceable('pin.service')).to.equal(
        'no machine can run it: draining excludes m1, m2; MachineID m1 excludes m3',
      ),
    );
  });
});
