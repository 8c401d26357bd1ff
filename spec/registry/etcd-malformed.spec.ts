import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import { ApiServer } from '../../fleetd/api/server.js';
import { MemoryLogger } from '../../lib/logger.js';
import {
  encodeGlobal,
  encodeMachine,
  encodePlacement,
  encodeUnit,
  encodeUnitState,
} from '../../registry/codec.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import type { MachinePresence } from '../../registry/registry.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { httpClient } from '../helpers/http.js';
import { machineRecord, unitRecord, unitState } from '../helpers/registry-builders.js';

/**
 * A malformed record of any kind in etcd (empty, bad JSON, an unknown version, an invalid IP or
 * ID, a record under another record's key) is skipped by every reader and logged once, never an
 * error that hides the rest of the cluster: a broken or hostile member can write any key.
 */
describe('registry on etcd: malformed records', function () {
  this.timeout(30_000);
  const etcd = useEtcd();
  let prefixes = 0;
  let prefix: string;
  let logger: MemoryLogger;
  let registry: EtcdRegistry;
  let presences: MachinePresence[];

  /** Writes a raw value under the registry's prefix, as any etcd client could. */
  async function put(key: string, value: string): Promise<void> {
    await etcd.current.client().put(`${prefix}${key}`).value(value);
  }

  function skippedKeys(): string[] {
    return logger.records
      .filter((r) => r.message === 'malformed record in etcd skipped')
      .map((r) => String(r.fields.key));
  }

  beforeEach(async () => {
    prefix = `/fleet-malformed-${process.pid}-${++prefixes}/`;
    logger = new MemoryLogger();
    registry = new EtcdRegistry({
      endpoints: [etcd.current.clientUrl],
      prefix,
      requestTimeoutMs: 2000,
      logger,
    });
    presences = [await registry.announceMachine(machineRecord('m1', { role: 'web' }, '10.0.0.1'), 30)];
  });

  afterEach(async () => {
    await Promise.all(presences.map((p) => p.close()));
    await registry.close();
  });

  const badMachines: readonly [string, string][] = [
    ['an empty value', ''],
    ['bad JSON', '{"v":1,'],
    [
      'an unknown version',
      JSON.stringify({ v: 2, id: 'bad', publicIp: '10.0.0.9', metadata: {}, version: 'x' }),
    ],
    ['JSON that is not an object', '[]'],
    [
      'an IP that is an ssh option',
      encodeMachine({ id: 'bad', publicIp: '-oProxyCommand=touch /tmp/x', metadata: {}, version: '1' }),
    ],
    [
      'an invalid machine ID',
      encodeMachine({ id: 'bad\u0000', publicIp: '10.0.0.9', metadata: {}, version: '1' }),
    ],
    [
      'an ID that differs from its key',
      encodeMachine({ id: 'other', publicIp: '10.0.0.9', metadata: {}, version: '1' }),
    ],
  ];
  for (const [what, value] of badMachines) {
    it(`lists the other machines past a machine record with ${what}, and logs it once`, async () => {
      await put('machines/bad', value);
      for (let i = 0; i < 3; i++) {
        const machines = await registry.listMachines();
        expect(machines.map((m) => m.id)).to.deep.equal(['m1']);
      }
      expect(skippedKeys()).to.deep.equal([`${prefix}machines/bad`]);
    });
  }

  it('logs a record again when it is rewritten (a new revision), and only then', async () => {
    await put('machines/bad', '');
    await registry.listMachines();
    await registry.listMachines();
    await put('machines/bad', 'nonsense');
    await registry.listMachines();
    await registry.listMachines();
    expect(skippedKeys()).to.deep.equal([`${prefix}machines/bad`, `${prefix}machines/bad`]);
  });

  it('skips malformed API metadata (a newline in the value, a key no PATCH could set) and keeps the rest', async () => {
    await put('metadata/m1/region', JSON.stringify({ v: 1, value: 'eu' }));
    await put('metadata/m1/evil', JSON.stringify({ v: 1, value: 'a\nb' }));
    await put('metadata/m1/ba d', JSON.stringify({ v: 1, value: 'x' }));
    await put('metadata/nomachine', JSON.stringify({ v: 1, value: 'x' }));
    const [m1] = await registry.listMachines();
    expect(m1?.metadata).to.deep.equal({ role: 'web', region: 'eu' });
    expect(skippedKeys()).to.have.length(3);
  });

  it('lists units, globals, the schedule and states past malformed records of each kind', async () => {
    const good = unitRecord('good.service');
    const global = unitRecord('all.service', ['Global=true']);
    expect(await registry.submitUnit(good, 'launched')).to.deep.equal({ kind: 'created' });
    expect(await registry.submitUnit(global, 'launched')).to.deep.equal({ kind: 'created' });
    const leadership = await registry.campaign('m1', 5, new AbortController().signal);
    const placement = {
      unit: 'good.service',
      machine: 'm1',
      hash: good.hash,
      desiredState: 'launched' as const,
    };
    expect(await registry.applySchedule([{ kind: 'put', placement }], leadership)).to.equal(true);
    await presences[0]?.publishUnitState(unitState('good.service', 'm1', { hash: good.hash }));

    // Units: empty, bad JSON, a name systemd refuses, a record under another unit's key.
    await put('unit/empty.service', '');
    await put('desired/empty.service', JSON.stringify({ v: 1, state: 'launched' }));
    await put('unit/x.busname', encodeUnit({ ...good, name: 'x.busname' }));
    await put('desired/x.busname', JSON.stringify({ v: 1, state: 'launched' }));
    await put('unit/moved.service', encodeUnit(good));
    await put('desired/moved.service', JSON.stringify({ v: 1, state: 'launched' }));
    await put('unit/bad-desired.service', encodeUnit({ ...good, name: 'bad-desired.service' }));
    await put('desired/bad-desired.service', JSON.stringify({ v: 1, state: 'running' }));
    // Globals: an entry with a bad version, and one whose unit record is bad JSON.
    await put('global/empty.service', encodeGlobal({ hash: 'h', desiredState: 'launched' }));
    await put('global/all2.service', JSON.stringify({ v: 9 }));
    await put('unit/all2.service', encodeUnit({ ...global, name: 'all2.service' }));
    // Schedule: a placement naming an invalid machine, an empty one, one under another name.
    await put(
      'schedule/m1/evil.service',
      encodePlacement({ ...placement, unit: 'evil.service', machine: '../m2' }),
    );
    await put('schedule/m1/empty.service', '');
    await put('schedule/m1/other.service', encodePlacement(placement));
    await put('placement/evil.service', '{');
    // States: empty, an invalid machine, a state under another unit's key.
    await put('state/good.service/m2', '');
    await put('state/good.service/m 3', encodeUnitState(unitState('good.service', 'm 3')));
    await put('state/other.service/m1', encodeUnitState(unitState('good.service', 'm1')));
    await put('reason/good.service', 'not json');

    expect((await registry.listUnits()).map((u) => u.unit.name)).to.deep.equal([
      'all.service',
      'good.service',
    ]);
    expect(await registry.getUnit('x.busname')).to.equal(undefined);
    expect((await registry.getUnit('good.service'))?.unit.hash).to.equal(good.hash);
    expect((await registry.listGlobalUnits()).map((u) => u.unit.name)).to.deep.equal(['all.service']);
    expect((await registry.listSchedule()).map((p) => `${p.machine}/${p.unit}`)).to.deep.equal([
      'm1/good.service',
    ]);
    expect((await registry.machineSchedule('m1')).map((p) => p.unit)).to.deep.equal(['good.service']);
    expect(await registry.getPlacement('evil.service')).to.equal(undefined);
    expect((await registry.listUnitStates()).map((s) => `${s.unit}/${s.machine}`)).to.deep.equal([
      'good.service/m1',
    ]);
    expect(await registry.listUnplaceable()).to.deep.equal(new Map());
    // An incremental re-read (the engine's) still skips them, and sees a repaired record.
    await put('unit/empty.service', encodeUnit({ ...good, name: 'empty.service' }));
    expect((await registry.listUnits()).map((u) => u.unit.name)).to.deep.equal([
      'all.service',
      'empty.service',
      'good.service',
    ]);
    // Destroying a unit whose placement is malformed still works.
    expect(await registry.destroyUnit('evil.service')).to.equal(false);
    await registry.submitUnit({ ...good, name: 'evil.service' }, 'launched');
    expect(await registry.destroyUnit('evil.service')).to.equal(true);
    // A malformed record under a name is replaced by a submit, not a crash.
    expect(
      (await registry.submitUnit({ ...good, name: 'x.busname' }, 'launched', { replace: true })).kind,
    ).to.equal('replaced');
    await leadership.resign();
  });

  describe('through the API', () => {
    let dir: string;
    let server: ApiServer;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-malformed-'));
    });

    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    beforeEach(async () => {
      server = new ApiServer({ registry, logger: new MemoryLogger() });
      await server.listenUnix(path.join(dir, `api-${prefixes}.sock`));
    });

    afterEach(async () => {
      await server.close();
    });

    it('answers GET /machines, /units and /state with 200 and the good records despite bad ones', async () => {
      const request = httpClient({ kind: 'unix', socketPath: path.join(dir, `api-${prefixes}.sock`) });
      await registry.submitUnit(unitRecord('good.service'), 'launched');
      await put('machines/bad', '');
      await put('unit/bad.service', '');
      await put('desired/bad.service', JSON.stringify({ v: 1, state: 'launched' }));
      await put('state/good.service/bad', '{}');
      const machines = await request('GET', '/fleet/v1/machines');
      expect(machines.status, machines.body).to.equal(200);
      expect(machines.json()).to.deep.include({
        machines: [{ id: 'm1', primaryIP: '10.0.0.1', metadata: { role: 'web' } }],
      });
      const units = await request('GET', '/fleet/v1/units');
      expect(units.status, units.body).to.equal(200);
      expect((units.json() as { units: { name: string }[] }).units.map((u) => u.name)).to.deep.equal([
        'good.service',
      ]);
      const states = await request('GET', '/fleet/v1/state');
      expect(states.status, states.body).to.equal(200);
    });
  });
});
