import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';

import { Engine, type EngineConfig } from '../../engine/engine.js';
import { ManualClock, flushMicrotasks, systemClock, type Clock } from '../../lib/clock.js';
import { MemoryLogger } from '../../lib/logger.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import type { UnitRecord } from '../../registry/model.js';
import type { MachinePresence } from '../../registry/registry.js';
import { formatProblem } from '../../unit/problems.js';
import { parseUnit } from '../../unit/unit.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitRecord } from '../helpers/registry-builders.js';

/** A socket unit record listening on `port`, with extra [Socket] and [X-Fleet] lines. */
function socketRecord(
  name: string,
  port: number,
  lines: readonly string[] = [],
  fleetLines: readonly string[] = [],
): UnitRecord {
  const fleet = fleetLines.length > 0 ? `\n[X-Fleet]\n${fleetLines.join('\n')}\n` : '';
  const r = parseUnit(name, `[Socket]\nListenStream=${port}\n${lines.map((l) => `${l}\n`).join('')}${fleet}`);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('; '));
  const u = r.value;
  return {
    name: u.name,
    hash: u.hash,
    options: u.file.options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
    fleet: u.fleet,
  };
}

const config: EngineConfig = { reconcileIntervalMs: 2000, leaseTtlSeconds: 10 };

describe('engine/engine over the in-memory registry', () => {
  let registry: InMemoryRegistry;
  let engines: Engine[];
  let presences: MachinePresence[];

  beforeEach(() => {
    registry = new InMemoryRegistry();
    engines = [];
    presences = [];
  });

  afterEach(async () => {
    for (const e of engines) await e.close();
  });

  function startEngine(machineId: string, clock: Clock = systemClock): Engine {
    const engine = new Engine({ machineId, registry, clock, logger: new MemoryLogger(), config });
    engine.start();
    engines.push(engine);
    return engine;
  }

  async function machine(id: string, metadata: Record<string, string> = {}): Promise<MachinePresence> {
    const p = await registry.announceMachine(machineRecord(id, metadata), 10);
    presences.push(p);
    return p;
  }

  const placementOf = async (unit: string) => registry.getPlacement(unit);

  it('leads alone and places a launched unit on the least-loaded machine', async () => {
    await machine('m1');
    await machine('m2');
    const engine = startEngine('m1');
    await registry.submitUnit(unitRecord('a.service'), 'launched');
    await registry.submitUnit(unitRecord('b.service'), 'launched');
    await eventually(async () =>
      expect((await registry.listSchedule()).map((p) => `${p.unit}@${p.machine}`)).to.deep.equal([
        'a.service@m1',
        'b.service@m2',
      ]),
    );
    expect(engine.leading).to.equal(true);
  });

  it('carries the hash and desired state into the placement and follows changes of both', async () => {
    await machine('m1');
    startEngine('m1');
    const u = unitRecord('a.service');
    await registry.submitUnit(u, 'loaded');
    await eventually(async () =>
      expect(await placementOf('a.service')).to.deep.equal({
        unit: 'a.service',
        machine: 'm1',
        hash: u.hash,
        desiredState: 'loaded',
      }),
    );
    await registry.setDesiredState('a.service', 'launched');
    await eventually(async () => expect((await placementOf('a.service'))?.desiredState).to.equal('launched'));
    const next = unitRecord('a.service', [], '/bin/other');
    await registry.submitUnit(next, 'launched', { replace: true });
    await eventually(async () => expect((await placementOf('a.service'))?.hash).to.equal(next.hash));
  });

  it('leaves inactive units unscheduled and unschedules a unit set to inactive', async () => {
    await machine('m1');
    startEngine('m1');
    await registry.submitUnit(unitRecord('idle.service'), 'inactive');
    await registry.submitUnit(unitRecord('a.service'), 'launched');
    await eventually(async () => expect(await placementOf('a.service')).to.not.equal(undefined));
    expect(await placementOf('idle.service')).to.equal(undefined);
    await registry.setDesiredState('a.service', 'inactive');
    await eventually(async () => expect(await placementOf('a.service')).to.equal(undefined));
  });

  it('keeps the placement of units replaced through inactive, which least-loaded would move', async () => {
    for (const id of ['m1', 'm2', 'm3']) await machine(id);
    startEngine('m1');
    for (const n of ['a', 'b', 'c', 'd']) await registry.submitUnit(unitRecord(`${n}.service`), 'launched');
    const where = async (): Promise<string[]> =>
      (await registry.listSchedule()).map((p) => `${p.unit}@${p.machine}`).sort();
    await eventually(async () =>
      expect(await where()).to.deep.equal(['a.service@m1', 'b.service@m2', 'c.service@m3', 'd.service@m1']),
    );
    // fleetctl start --replace: new contents with desired state inactive, then launched again.
    for (const n of ['a', 'c']) {
      await registry.submitUnit(unitRecord(`${n}.service`, [], '/bin/other'), 'inactive', { replace: true });
    }
    await eventually(async () => expect(await where()).to.deep.equal(['b.service@m2', 'd.service@m1']));
    for (const n of ['a', 'c']) await registry.setDesiredState(`${n}.service`, 'launched');
    // Least-loaded alone would put a on m3 and c on m1.
    await eventually(async () =>
      expect(await where()).to.deep.equal(['a.service@m1', 'b.service@m2', 'c.service@m3', 'd.service@m1']),
    );
  });

  it('moves the units of a machine that vanished', async () => {
    await machine('m1');
    await machine('m2');
    startEngine('m2');
    await registry.submitUnit(unitRecord('x.service'), 'launched');
    await eventually(async () => expect((await placementOf('x.service'))?.machine).to.equal('m1'));
    registry.expireMachine('m1');
    await eventually(async () => expect((await placementOf('x.service'))?.machine).to.equal('m2'));
  });

  it('records why a unit cannot be placed, and forgets it once the unit is placed', async () => {
    await machine('m1', { region: 'eu' });
    const engine = startEngine('m1');
    await registry.submitUnit(unitRecord('us.service', ['MachineMetadata=region=us']), 'launched');
    await eventually(() => expect(engine.unplaceable.map((u) => u.unit)).to.deep.equal(['us.service']));
    expect(engine.unplaceable[0]?.reason).to.match(/region/);
    await eventually(async () => expect(await registry.getUnplaceable('us.service')).to.match(/region/));
    await machine('m2', { region: 'us' });
    await eventually(async () => expect(await registry.getUnplaceable('us.service')).to.equal(undefined));
    expect((await placementOf('us.service'))?.machine).to.equal('m2');
  });

  it('lets exactly one of several engines lead, and another take over when the leader goes', async () => {
    await machine('m1');
    const a = startEngine('m1');
    const b = startEngine('m2');
    const c = startEngine('m3');
    await eventually(() => expect([a, b, c].filter((e) => e.leading)).to.have.length(1));
    const leader = [a, b, c].find((e) => e.leading);
    registry.expireLeader();
    await eventually(() => expect([a, b, c].filter((e) => e.leading && e !== leader)).to.have.length(1));
    await registry.submitUnit(unitRecord('after.service'), 'launched');
    await eventually(async () => expect(await placementOf('after.service')).to.not.equal(undefined));
  });

  it('resigns on close so that another engine leads at once', async () => {
    const a = startEngine('m1');
    await eventually(() => expect(a.leading).to.equal(true));
    const b = startEngine('m2');
    await a.close();
    await eventually(() => expect(b.leading).to.equal(true));
  });

  it('makes no registry request in a periodic run when nothing changed', async () => {
    const clock = new ManualClock();
    await machine('m1');
    await registry.submitUnit(unitRecord('a.service'), 'launched');
    const engine = startEngine('m1', clock);
    await eventually(async () => expect(await placementOf('a.service')).to.not.equal(undefined));
    await engine.idle();
    const before = registry.requestCount;
    for (let i = 0; i < 10; i++) {
      await clock.advance(config.reconcileIntervalMs);
      await flushMicrotasks();
    }
    await engine.idle();
    expect(registry.requestCount).to.equal(before);
    expect(engine.rounds).to.be.greaterThan(0);
  });

  describe('socket activation', () => {
    const schedule = async () =>
      (await registry.listSchedule()).map((p) => `${p.unit}@${p.machine} ${p.desiredState}`).sort();

    it('places a socket and its inactive service together, the service loaded', async () => {
      await machine('m1');
      await machine('m2');
      startEngine('m1');
      await registry.submitUnit(unitRecord('busy.service'), 'launched');
      await eventually(async () => expect(await placementOf('busy.service')).to.not.equal(undefined));
      await registry.submitUnit(unitRecord('echo.service'), 'inactive');
      await registry.submitUnit(socketRecord('echo.socket', 7001), 'launched');
      await eventually(async () =>
        expect(await schedule()).to.deep.equal([
          'busy.service@m1 launched',
          'echo.service@m2 loaded',
          'echo.socket@m2 launched',
        ]),
      );
      // The stored desired state stays the user's.
      expect((await registry.getUnit('echo.service'))?.desiredState).to.equal('inactive');
    });

    it('moves the pair together when its machine expires', async () => {
      await machine('m1');
      await machine('m2');
      startEngine('m2');
      await registry.submitUnit(unitRecord('greet@.service'), 'inactive');
      await registry.submitUnit(socketRecord('greet.socket', 7002, ['Accept=yes']), 'launched');
      await eventually(async () =>
        expect(await schedule()).to.deep.equal(['greet.socket@m1 launched', 'greet@.service@m1 loaded']),
      );
      registry.expireMachine('m1');
      await eventually(async () =>
        expect(await schedule()).to.deep.equal(['greet.socket@m2 launched', 'greet@.service@m2 loaded']),
      );
    });

    it('unschedules an inactive service with its socket', async () => {
      await machine('m1');
      startEngine('m1');
      await registry.submitUnit(unitRecord('echo.service'), 'inactive');
      await registry.submitUnit(socketRecord('echo.socket', 7001), 'launched');
      await eventually(async () => expect(await schedule()).to.have.length(2));
      await registry.setDesiredState('echo.socket', 'inactive');
      await eventually(async () => expect(await schedule()).to.deep.equal([]));
    });

    it('records why a socket and its service pinned apart cannot be placed', async () => {
      await machine('m1');
      const engine = startEngine('m1');
      await registry.submitUnit(unitRecord('pinned.service', ['MachineID=m2']), 'inactive');
      await registry.submitUnit(socketRecord('pinned.socket', 7003, [], ['MachineID=m1']), 'launched');
      const reason =
        'socket pinned.socket and its service pinned.service are pinned apart: MachineID m1 vs MachineID m2';
      await eventually(async () => expect(await registry.getUnplaceable('pinned.socket')).to.equal(reason));
      expect(await registry.getUnplaceable('pinned.service')).to.equal(reason);
      expect(engine.unplaceable.map((u) => u.unit)).to.deep.equal(['pinned.service', 'pinned.socket']);
      expect(await schedule()).to.deep.equal([]);
    });
  });
});
