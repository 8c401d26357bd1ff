import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';

import { isFleetError } from '../../lib/errors.js';
import type { Registry } from '../../registry/registry.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import type { ClusterEvent } from '../../unit/cluster-events.js';
import { machineRecord, unitRecord, unitState } from '../helpers/registry-builders.js';

/** What one contract run needs: a fresh, empty registry, and more clients of the same store. */
export interface ContractSubject {
  readonly registry: Registry;
  /** Another client of the same store, as a second fleetd would hold. */
  peer(): Promise<Registry>;
  /** Releases everything the subject made (peers included). */
  cleanup(): Promise<void>;
}

/** Counts listener calls, for watch tests. */
function counter(): { readonly calls: () => number; readonly listener: () => void } {
  let n = 0;
  return {
    calls: () => n,
    listener: () => {
      n++;
    },
  };
}

/**
 * The registry contract: every implementation (etcd, in-memory) must pass it unchanged. Each
 * test gets a fresh, empty store from `setup`.
 */
export function registryContract(label: string, setup: () => Promise<ContractSubject>): void {
  describe(`registry contract: ${label}`, function () {
    this.timeout(20_000);
    let subject: ContractSubject;
    let r: Registry;

    beforeEach(async () => {
      subject = await setup();
      r = subject.registry;
    });

    afterEach(async () => {
      await subject.cleanup();
    });

    async function lead(registry: Registry = r, candidate = 'engine-a') {
      return registry.campaign(candidate, 5, new AbortController().signal);
    }

    describe('units', () => {
      it('creates a unit with its desired state and reads it back', async () => {
        const u = unitRecord('web.service', ['MachineMetadata=role=web']);
        expect(await r.submitUnit(u, 'launched')).to.deep.equal({ kind: 'created' });
        expect(await r.getUnit('web.service')).to.deep.equal({ unit: u, desiredState: 'launched' });
      });

      it('answers undefined for an unknown unit', async () => {
        expect(await r.getUnit('nope.service')).to.equal(undefined);
      });

      it('lists units sorted by name', async () => {
        for (const n of ['c.service', 'a.service', 'b.socket']) await r.submitUnit(unitRecord(n), 'inactive');
        expect((await r.listUnits()).map((s) => s.unit.name)).to.deep.equal([
          'a.service',
          'b.socket',
          'c.service',
        ]);
      });

      it('treats submitting the same unit again as unchanged and keeps the desired state', async () => {
        const u = unitRecord('a.service');
        await r.submitUnit(u, 'launched');
        expect(await r.submitUnit(u, 'inactive')).to.deep.equal({ kind: 'unchanged' });
        expect((await r.getUnit('a.service'))?.desiredState).to.equal('launched');
      });

      it('refuses different contents under an existing name and changes nothing', async () => {
        const first = unitRecord('a.service');
        await r.submitUnit(first, 'loaded');
        const second = unitRecord('a.service', [], '/bin/other');
        expect(await r.submitUnit(second, 'launched')).to.deep.equal({
          kind: 'conflict',
          existingHash: first.hash,
        });
        expect(await r.getUnit('a.service')).to.deep.equal({ unit: first, desiredState: 'loaded' });
      });

      it('replaces different contents when asked', async () => {
        const first = unitRecord('a.service');
        await r.submitUnit(first, 'loaded');
        const second = unitRecord('a.service', [], '/bin/other');
        expect(await r.submitUnit(second, 'launched', { replace: true })).to.deep.equal({
          kind: 'replaced',
          previousHash: first.hash,
        });
        expect(await r.getUnit('a.service')).to.deep.equal({ unit: second, desiredState: 'launched' });
      });

      it("keeps a unit's origin", async () => {
        const dropped = { ...unitRecord('a.service'), origin: 'drop:m1:/etc/fleet/units/a.service' };
        await r.submitUnit(dropped, 'launched');
        expect(await r.getUnit('a.service')).to.deep.equal({ unit: dropped, desiredState: 'launched' });
        expect((await r.listUnits()).map((s) => s.unit)).to.deep.equal([dropped]);
        // A replace through the API carries no origin: the stored unit has none afterwards.
        const api = unitRecord('a.service', [], '/bin/other');
        await r.submitUnit(api, 'launched', { replace: true });
        const stored = await r.getUnit('a.service');
        expect(stored?.unit).to.deep.equal(api);
        expect(stored?.unit).not.to.have.property('origin');
      });

      it('sets the desired state of a unit', async () => {
        await r.submitUnit(unitRecord('a.service'), 'inactive');
        expect(await r.setDesiredState('a.service', 'launched')).to.equal(true);
        expect((await r.getUnit('a.service'))?.desiredState).to.equal('launched');
        expect(await r.setDesiredState('a.service', 'launched')).to.equal(true);
      });

      it('answers false when setting the desired state of an unknown unit, creating nothing', async () => {
        expect(await r.setDesiredState('ghost.service', 'launched')).to.equal(false);
        expect(await r.getUnit('ghost.service')).to.equal(undefined);
      });

      it('destroys everything about a unit', async () => {
        const leadership = await lead();
        const u = unitRecord('a.service');
        await r.submitUnit(u, 'launched');
        await r.applySchedule(
          [
            {
              kind: 'put',
              placement: { unit: 'a.service', machine: 'm1', hash: u.hash, desiredState: 'launched' },
            },
          ],
          leadership,
        );
        const presence = await r.announceMachine(machineRecord('m1'), 10);
        await presence.publishUnitState(unitState('a.service', 'm1'));
        expect(await r.destroyUnit('a.service')).to.equal(true);
        expect(await r.getUnit('a.service')).to.equal(undefined);
        expect(await r.listUnits()).to.deep.equal([]);
        expect(await r.getPlacement('a.service')).to.equal(undefined);
        expect(await r.machineSchedule('m1')).to.deep.equal([]);
        expect(await r.listUnitStates({ unit: 'a.service' })).to.deep.equal([]);
        await presence.close();
      });

      it('answers false when destroying an unknown unit', async () => {
        expect(await r.destroyUnit('ghost.service')).to.equal(false);
      });

      it('lets a destroyed name be submitted again with other contents', async () => {
        await r.submitUnit(unitRecord('a.service'), 'launched');
        await r.destroyUnit('a.service');
        const again = unitRecord('a.service', [], '/bin/new');
        expect(await r.submitUnit(again, 'inactive')).to.deep.equal({ kind: 'created' });
      });

      it('fires the units watch on submit, desired-state change and destroy', async () => {
        const c = counter();
        const sub = await r.watchUnits(c.listener);
        await r.submitUnit(unitRecord('a.service'), 'inactive');
        await eventually(() => expect(c.calls()).to.be.greaterThan(0));
        let before = c.calls();
        await r.setDesiredState('a.service', 'launched');
        await eventually(() => expect(c.calls()).to.be.greaterThan(before));
        before = c.calls();
        await r.destroyUnit('a.service');
        await eventually(() => expect(c.calls()).to.be.greaterThan(before));
        await sub.close();
      });

      it('stops firing a watch once it is closed', async () => {
        const c = counter();
        const sub = await r.watchUnits(c.listener);
        await sub.close();
        await r.submitUnit(unitRecord('a.service'), 'inactive');
        const marker = counter();
        const probe = await r.watchUnits(marker.listener);
        await r.submitUnit(unitRecord('b.service'), 'inactive');
        await eventually(() => expect(marker.calls()).to.be.greaterThan(0));
        expect(c.calls()).to.equal(0);
        await probe.close();
      });
    });

    describe('global units', () => {
      it('lists global units only, with their desired state', async () => {
        await r.submitUnit(unitRecord('plain.service'), 'launched');
        const g = unitRecord('g.service', ['Global=true']);
        await r.submitUnit(g, 'launched');
        expect(await r.listGlobalUnits()).to.deep.equal([{ unit: g, desiredState: 'launched' }]);
        await r.setDesiredState('g.service', 'loaded');
        expect((await r.listGlobalUnits())[0]?.desiredState).to.equal('loaded');
      });

      it('follows a replace that makes a unit global or plain', async () => {
        await r.submitUnit(unitRecord('x.service'), 'launched');
        await r.submitUnit(unitRecord('x.service', ['Global=true']), 'launched', { replace: true });
        expect((await r.listGlobalUnits()).map((s) => s.unit.name)).to.deep.equal(['x.service']);
        await r.submitUnit(unitRecord('x.service'), 'launched', { replace: true });
        expect(await r.listGlobalUnits()).to.deep.equal([]);
      });

      it('forgets a destroyed global unit', async () => {
        await r.submitUnit(unitRecord('g.service', ['Global=true']), 'launched');
        await r.destroyUnit('g.service');
        expect(await r.listGlobalUnits()).to.deep.equal([]);
      });

      it('fires the global watch for global units and not for plain ones', async () => {
        const c = counter();
        const sub = await r.watchGlobalUnits(c.listener);
        const units = counter();
        const unitsSub = await r.watchUnits(units.listener);
        await r.submitUnit(unitRecord('plain.service'), 'launched');
        await eventually(() => expect(units.calls()).to.be.greaterThan(0));
        expect(c.calls()).to.equal(0);
        await r.submitUnit(unitRecord('g.service', ['Global=true']), 'launched');
        await eventually(() => expect(c.calls()).to.be.greaterThan(0));
        await sub.close();
        await unitsSub.close();
      });
    });

    describe('schedule', () => {
      const place = (unit: string, machine: string, desiredState: 'loaded' | 'launched' = 'launched') => ({
        kind: 'put' as const,
        placement: { unit, machine, hash: `hash-${unit}`, desiredState },
      });

      it('applies placements while leading and reads them back by unit, machine and in full', async () => {
        const l = await lead();
        expect(
          await r.applySchedule(
            [place('b.service', 'm2'), place('a.service', 'm1'), place('c.service', 'm1')],
            l,
          ),
        ).to.equal(true);
        expect(await r.getPlacement('a.service')).to.deep.equal(place('a.service', 'm1').placement);
        expect((await r.machineSchedule('m1')).map((p) => p.unit)).to.deep.equal(['a.service', 'c.service']);
        expect((await r.listSchedule()).map((p) => `${p.machine}/${p.unit}`)).to.deep.equal([
          'm1/a.service',
          'm1/c.service',
          'm2/b.service',
        ]);
      });

      it('updates a placement in place (a new desired state or hash)', async () => {
        const l = await lead();
        await r.applySchedule([place('a.service', 'm1', 'launched')], l);
        await r.applySchedule([place('a.service', 'm1', 'loaded')], l);
        expect((await r.machineSchedule('m1')).map((p) => p.desiredState)).to.deep.equal(['loaded']);
      });

      it('moves a unit with a delete and a put in one call', async () => {
        const l = await lead();
        await r.applySchedule([place('a.service', 'm1')], l);
        await r.applySchedule(
          [{ kind: 'delete', unit: 'a.service', machine: 'm1' }, place('a.service', 'm2')],
          l,
        );
        expect(await r.machineSchedule('m1')).to.deep.equal([]);
        expect((await r.getPlacement('a.service'))?.machine).to.equal('m2');
      });

      it('unschedules a unit', async () => {
        const l = await lead();
        await r.applySchedule([place('a.service', 'm1')], l);
        expect(await r.applySchedule([{ kind: 'delete', unit: 'a.service', machine: 'm1' }], l)).to.equal(
          true,
        );
        expect(await r.getPlacement('a.service')).to.equal(undefined);
        expect(await r.listSchedule()).to.deep.equal([]);
      });

      it('ignores a delete that names a machine the unit is not on', async () => {
        const l = await lead();
        await r.applySchedule([place('a.service', 'm1')], l);
        await r.applySchedule([{ kind: 'delete', unit: 'a.service', machine: 'm9' }], l);
        expect((await r.getPlacement('a.service'))?.machine).to.equal('m1');
      });

      it('rejects the writes of a deposed leader, writing nothing', async () => {
        const a = await lead(r, 'engine-a');
        await a.resign();
        expect(a.lost).to.equal(true);
        const peer = await subject.peer();
        const b = await lead(peer, 'engine-b');
        expect(await peer.applySchedule([place('a.service', 'm1')], b)).to.equal(true);
        expect(await r.applySchedule([place('a.service', 'm2'), place('z.service', 'm2')], a)).to.equal(
          false,
        );
        expect((await r.getPlacement('a.service'))?.machine).to.equal('m1');
        expect(await r.getPlacement('z.service')).to.equal(undefined);
      });

      it('fires a machine schedule watch for that machine only', async () => {
        const l = await lead();
        const m1 = counter();
        const m2 = counter();
        const s1 = await r.watchMachineSchedule('m1', m1.listener);
        const s2 = await r.watchMachineSchedule('m2', m2.listener);
        await r.applySchedule([place('a.service', 'm1')], l);
        await eventually(() => expect(m1.calls()).to.be.greaterThan(0));
        // A later write to m2 proves m2's watch works and that m1's write did not reach it.
        const before = m2.calls();
        expect(before).to.equal(0);
        await r.applySchedule([place('b.service', 'm2')], l);
        await eventually(() => expect(m2.calls()).to.be.greaterThan(0));
        await s1.close();
        await s2.close();
      });
    });

    describe('unplaceable reasons', () => {
      it('records, lists and clears reasons while leading', async () => {
        const l = await lead();
        const set = new Map([
          ['b.service', 'no machine can run it: MachineMetadata region=us excludes m1'],
          ['a.service', 'peer x.service is missing'],
        ]);
        expect(await r.recordUnplaceable({ set, clear: [] }, l)).to.equal(true);
        expect(await r.getUnplaceable('b.service')).to.equal(set.get('b.service'));
        expect([...(await r.listUnplaceable()).keys()]).to.deep.equal(['a.service', 'b.service']);
        expect(
          await r.recordUnplaceable({ set: new Map(), clear: ['a.service', 'never.service'] }, l),
        ).to.equal(true);
        expect(await r.getUnplaceable('a.service')).to.equal(undefined);
        expect([...(await r.listUnplaceable()).keys()]).to.deep.equal(['b.service']);
      });

      it('rejects reasons from a deposed leader', async () => {
        const a = await lead(r, 'engine-a');
        await a.resign();
        expect(await r.recordUnplaceable({ set: new Map([['x.service', 'why']]), clear: [] }, a)).to.equal(
          false,
        );
        expect(await r.getUnplaceable('x.service')).to.equal(undefined);
      });

      it('forgets the reason of a destroyed unit', async () => {
        const l = await lead();
        await r.submitUnit(unitRecord('x.service'), 'launched');
        await r.recordUnplaceable({ set: new Map([['x.service', 'why']]), clear: [] }, l);
        await r.destroyUnit('x.service');
        expect(await r.getUnplaceable('x.service')).to.equal(undefined);
      });
    });

    describe('drain marks', () => {
      const mark = (machine: string, maxParallel = 1, force = false) => ({
        machine,
        maxParallel,
        force,
        requestedAt: 1_700_000_000_000,
      });
      const progress = {
        state: 'draining' as const,
        moving: { 'a.service': 'stopping' as const },
        moved: ['b.service'],
        stuck: [{ unit: 'c.service', reason: 'MachineID pins it to m1' }],
        forced: [],
        failed: [],
      };

      it('sets, reads, lists and clears marks, sorted by machine', async () => {
        await r.setDrain(mark('m2', 2));
        await r.setDrain(mark('m1', 1, true));
        expect(await r.getDrain('m1')).to.deep.equal({ mark: mark('m1', 1, true) });
        expect((await r.listDrains()).map((d) => d.mark.machine)).to.deep.equal(['m1', 'm2']);
        expect(await r.clearDrain('m1')).to.equal(true);
        expect(await r.clearDrain('m1')).to.equal(false);
        expect(await r.getDrain('m1')).to.equal(undefined);
        expect(await r.listDrains()).to.deep.equal([{ mark: mark('m2', 2) }]);
      });

      it('keeps the progress when the options of a drain change, and drops it with the mark', async () => {
        const l = await lead();
        await r.setDrain(mark('m1'));
        expect(await r.recordDrainProgress('m1', progress, l)).to.equal(true);
        await r.setDrain(mark('m1', 3));
        expect(await r.getDrain('m1')).to.deep.equal({ mark: mark('m1', 3), progress });
        expect(await r.listDrains()).to.deep.equal([{ mark: mark('m1', 3), progress }]);
        await r.clearDrain('m1');
        await r.setDrain(mark('m1'));
        expect(await r.getDrain('m1')).to.deep.equal({ mark: mark('m1') });
      });

      it('writes no progress for an unmarked machine, and none from a deposed leader', async () => {
        const l = await lead();
        expect(await r.recordDrainProgress('m9', progress, l)).to.equal(true);
        expect(await r.getDrain('m9')).to.equal(undefined);
        await r.setDrain(mark('m9'));
        expect(await r.getDrain('m9')).to.deep.equal({ mark: mark('m9') });
        await l.resign();
        expect(await r.recordDrainProgress('m9', progress, l)).to.equal(false);
        expect(await r.getDrain('m9')).to.deep.equal({ mark: mark('m9') });
      });

      it('fires the drain watch on set, progress and clear', async () => {
        const l = await lead();
        const c = counter();
        const sub = await r.watchDrains(c.listener);
        await r.setDrain(mark('m1'));
        await eventually(() => expect(c.calls()).to.be.greaterThan(0));
        const afterSet = c.calls();
        await r.recordDrainProgress('m1', progress, l);
        await eventually(() => expect(c.calls()).to.be.greaterThan(afterSet));
        const afterProgress = c.calls();
        await r.clearDrain('m1');
        await eventually(() => expect(c.calls()).to.be.greaterThan(afterProgress));
        await sub.close();
      });

      it('shares marks between clients of one store', async () => {
        const peer = await subject.peer();
        await r.setDrain(mark('m1', 2));
        expect(await peer.getDrain('m1')).to.deep.equal({ mark: mark('m1', 2) });
      });
    });

    describe('machines', () => {
      it('announces a machine and lists live machines sorted by ID', async () => {
        const b = await r.announceMachine(machineRecord('mb', { region: 'eu' }), 10);
        const a = await r.announceMachine(machineRecord('ma'), 10);
        expect((await r.listMachines()).map((m) => m.id)).to.deep.equal(['ma', 'mb']);
        expect((await r.listMachines())[1]).to.deep.equal(machineRecord('mb', { region: 'eu' }));
        await a.close();
        await b.close();
      });

      it('refuses a second live presence with the same machine ID, also from another client', async () => {
        const p = await r.announceMachine(machineRecord('m1'), 10);
        const peer = await subject.peer();
        const err: unknown = await peer
          .announceMachine(machineRecord('m1', {}, '10.250.0.99'), 10)
          .catch((e: unknown) => e);
        expect(isFleetError(err, 'MACHINE_ID_IN_USE'), String(err)).to.equal(true);
        expect((err as Error).message).to.match(/m1/);
        await p.close();
      });

      it('lets a restarted fleetd on the same machine (same boot ID and address) take its presence over', async () => {
        const record = { ...machineRecord('m1'), bootId: 'boot-1' };
        const first = await r.announceMachine(record, 3);
        await first.publishUnitState(unitState('a.service', 'm1'));
        const peer = await subject.peer();
        const second = await peer.announceMachine({ ...record, metadata: { v: '2' } }, 3);
        expect((await r.listMachines()).map((m) => [m.id, m.metadata])).to.deep.equal([['m1', { v: '2' }]]);
        await eventually(() => expect(first.lost).to.equal(true), { timeoutMs: 8000 });
        expect(await r.listUnitStates({ machine: 'm1' })).to.deep.equal([]);
        await second.publishUnitState(unitState('b.service', 'm1'));
        expect((await r.listUnitStates({ machine: 'm1' })).map((s) => s.unit)).to.deep.equal(['b.service']);
        expect((await r.listMachines()).map((m) => m.id)).to.deep.equal(['m1']);
        await second.close();
      });

      it('refuses a takeover by another boot or another address', async () => {
        const p = await r.announceMachine({ ...machineRecord('m1'), bootId: 'boot-1' }, 10);
        const peer = await subject.peer();
        for (const other of [
          { ...machineRecord('m1'), bootId: 'boot-2' },
          { ...machineRecord('m1', {}, '10.250.0.99'), bootId: 'boot-1' },
          machineRecord('m1'),
        ]) {
          const err: unknown = await peer.announceMachine(other, 10).catch((e: unknown) => e);
          expect(isFleetError(err, 'MACHINE_ID_IN_USE'), String(err)).to.equal(true);
        }
        expect(p.lost).to.equal(false);
        await p.close();
      });

      it('removes the machine and its unit states when the presence closes, and allows the ID again', async () => {
        const p = await r.announceMachine(machineRecord('m1'), 10);
        await p.publishUnitState(unitState('a.service', 'm1'));
        await p.close();
        expect(p.lost).to.equal(true);
        expect(await r.listMachines()).to.deep.equal([]);
        expect(await r.listUnitStates()).to.deep.equal([]);
        const again = await r.announceMachine(machineRecord('m1'), 10);
        await again.close();
      });

      it('tells onLost listeners when the presence ends', async () => {
        const p = await r.announceMachine(machineRecord('m1'), 10);
        let told = false;
        p.onLost(() => (told = true));
        await p.close();
        await eventually(() => expect(told).to.equal(true));
      });

      it('rewrites the machine record under the same presence', async () => {
        const p = await r.announceMachine(machineRecord('m1'), 10);
        await p.update(machineRecord('m1', { disk: 'ssd' }, '10.250.0.11'));
        expect(await r.listMachines()).to.deep.equal([machineRecord('m1', { disk: 'ssd' }, '10.250.0.11')]);
        await p.close();
      });

      it('merges metadata set through the API, which wins and can remove a configured key', async () => {
        const p = await r.announceMachine(machineRecord('m1', { region: 'eu', disk: 'hdd' }), 10);
        await r.changeMachineMetadata([{ machine: 'm1', key: 'disk', value: 'ssd' }]);
        await r.changeMachineMetadata([{ machine: 'm1', key: 'rack', value: '7' }]);
        await r.changeMachineMetadata([{ machine: 'm1', key: 'region', value: undefined }]);
        expect((await r.listMachines())[0]?.metadata).to.deep.equal({ disk: 'ssd', rack: '7' });
        await p.close();
      });

      it('changes metadata all at once, and not at all when a named machine is not live', async () => {
        const p1 = await r.announceMachine(machineRecord('m1'), 10);
        const p2 = await r.announceMachine(machineRecord('m2'), 10);
        const missing = await r.changeMachineMetadata([
          { machine: 'm1', key: 'a', value: '1' },
          { machine: 'gone', key: 'a', value: '1' },
          { machine: 'm2', key: 'a', value: '1' },
          { machine: 'also-gone', key: 'a', value: '1' },
        ]);
        expect(missing).to.deep.equal(['also-gone', 'gone']);
        expect((await r.listMachines()).map((m) => m.metadata)).to.deep.equal([{}, {}]);
        expect(
          await r.changeMachineMetadata([
            { machine: 'm1', key: 'a', value: '1' },
            { machine: 'm2', key: 'b', value: '2' },
            { machine: 'm1', key: 'a', value: '3' },
          ]),
        ).to.deep.equal([]);
        expect((await r.listMachines()).map((m) => m.metadata)).to.deep.equal([{ a: '3' }, { b: '2' }]);
        await p1.close();
        await p2.close();
      });

      it('fires the machines watch on announce, metadata change and departure', async () => {
        const c = counter();
        const sub = await r.watchMachines(c.listener);
        const p = await r.announceMachine(machineRecord('m1'), 10);
        await eventually(() => expect(c.calls()).to.be.greaterThan(0));
        let before = c.calls();
        await r.changeMachineMetadata([{ machine: 'm1', key: 'k', value: 'v' }]);
        await eventually(() => expect(c.calls()).to.be.greaterThan(before));
        before = c.calls();
        await p.close();
        await eventually(() => expect(c.calls()).to.be.greaterThan(before));
        await sub.close();
      });
    });

    describe('unit states', () => {
      it('publishes, filters and removes unit states', async () => {
        const p1 = await r.announceMachine(machineRecord('m1'), 10);
        const p2 = await r.announceMachine(machineRecord('m2'), 10);
        await p1.publishUnitState(unitState('b.service', 'm1'));
        await p1.publishUnitState(
          unitState('a.service', 'm1', { activeState: 'failed', subState: 'failed' }),
        );
        await p2.publishUnitState(unitState('a.service', 'm2'));
        expect((await r.listUnitStates()).map((s) => `${s.unit}@${s.machine}`)).to.deep.equal([
          'a.service@m1',
          'a.service@m2',
          'b.service@m1',
        ]);
        expect((await r.listUnitStates({ machine: 'm1', unit: 'a.service' }))[0]?.activeState).to.equal(
          'failed',
        );
        expect(await r.listUnitStates({ machine: 'm2' })).to.have.length(1);
        await p1.removeUnitState('a.service');
        await p1.removeUnitState('a.service');
        expect((await r.listUnitStates({ unit: 'a.service' })).map((s) => s.machine)).to.deep.equal(['m2']);
        await p1.close();
        await p2.close();
      });

      it('overwrites a unit state on republish', async () => {
        const p = await r.announceMachine(machineRecord('m1'), 10);
        await p.publishUnitState(unitState('a.service', 'm1', { activeState: 'activating' }));
        await p.publishUnitState(unitState('a.service', 'm1', { activeState: 'active' }));
        expect((await r.listUnitStates()).map((s) => s.activeState)).to.deep.equal(['active']);
        await p.close();
      });
    });

    describe('events', () => {
      const DAY = { maxAgeMs: 86_400_000 };
      const event = (
        time: number,
        kind: ClusterEvent['kind'],
        unit: string | undefined,
        machine: string | undefined,
        message: string = kind,
      ): ClusterEvent => ({
        time,
        kind,
        ...(unit === undefined ? {} : { unit }),
        ...(machine === undefined ? {} : { machine }),
        message,
        reporter: 'm1',
      });

      it('keeps events, many to a write, and lists them oldest first', async () => {
        const now = Date.now();
        await r.recordEvents(
          [event(now - 10, 'started', 'a.service', 'm1'), event(now - 30, 'placed', 'a.service', 'm1')],
          DAY,
        );
        await r.recordEvents([event(now - 20, 'machine-joined', undefined, 'm2', 'machine m2 joined')], DAY);
        const read = await r.listEvents();
        expect(read.events.map((e) => e.kind)).to.deep.equal(['placed', 'machine-joined', 'started']);
        expect(read.events[1]).to.include({ machine: 'm2', message: 'machine m2 joined', reporter: 'm1' });
        expect(read.events[1]?.unit).to.equal(undefined);
        expect(new Set(read.events.map((e) => e.id)).size).to.equal(3);
        expect(read.revision).to.be.at.least(Math.max(...read.events.map((e) => e.revision)));
      });

      it('filters by unit, machine, kind and time', async () => {
        const now = Date.now();
        await r.recordEvents(
          [
            event(now - 3000, 'placed', 'a.service', 'm1'),
            event(now - 2000, 'started', 'a.service', 'm1'),
            event(now - 1000, 'started', 'b.service', 'm2'),
            event(now, 'machine-lost', undefined, 'm1'),
          ],
          DAY,
        );
        const kinds = async (filter: Parameters<Registry['listEvents']>[0]) =>
          (await r.listEvents(filter)).events.map((e) => `${e.kind}:${e.unit ?? '-'}@${e.machine ?? '-'}`);
        expect(await kinds({ units: ['a.service'] })).to.deep.equal([
          'placed:a.service@m1',
          'started:a.service@m1',
        ]);
        expect(await kinds({ machine: 'm1' })).to.deep.equal([
          'placed:a.service@m1',
          'started:a.service@m1',
          'machine-lost:-@m1',
        ]);
        expect(await kinds({ kinds: ['started'] })).to.deep.equal([
          'started:a.service@m1',
          'started:b.service@m2',
        ]);
        expect(await kinds({ since: now - 1500 })).to.deep.equal([
          'started:b.service@m2',
          'machine-lost:-@m1',
        ]);
      });

      it('replays only what was written after a revision, and tells the watch of each write', async () => {
        await r.recordEvents([event(Date.now(), 'placed', 'a.service', 'm1')], DAY);
        const first = await r.listEvents();
        const c = counter();
        const sub = await r.watchEvents(c.listener);
        await r.recordEvents([event(Date.now(), 'started', 'a.service', 'm1')], DAY);
        await eventually(() => {
          expect(c.calls()).to.be.at.least(1);
        });
        await sub.close();
        const after = await r.listEvents({ afterRevision: first.revision });
        expect(after.events.map((e) => e.kind)).to.deep.equal(['started']);
        expect(after.revision).to.be.greaterThan(first.revision);
        expect((await r.listEvents({ afterRevision: after.revision })).events).to.deep.equal([]);
      });

      it('trims the oldest events beyond a count', async () => {
        const now = Date.now();
        await r.recordEvents(
          Array.from({ length: 7 }, (_, i) => event(now + i, 'started', `u${i}.service`, 'm1')),
          DAY,
        );
        expect(await r.trimEvents(5)).to.equal(2);
        expect((await r.listEvents()).events.map((e) => e.unit)).to.deep.equal([
          'u2.service',
          'u3.service',
          'u4.service',
          'u5.service',
          'u6.service',
        ]);
        expect(await r.trimEvents(5)).to.equal(0);
      });

      it('lets events expire on their own after their age (and at most a bucket more)', async () => {
        const retention = { maxAgeMs: 1000, bucketMs: 1000 };
        const written = Date.now();
        await r.recordEvents([event(written, 'started', 'a.service', 'm1')], retention);
        expect((await r.listEvents()).events).to.have.length(1);
        await eventually(
          async () => {
            expect((await r.listEvents()).events).to.deep.equal([]);
          },
          { timeoutMs: 10_000 },
        );
        // Gone no earlier than its age (the lease covers age + bucket).
        expect(Date.now() - written).to.be.at.least(1000);
      });
    });

    describe('leader election', () => {
      it('makes a lone campaigner the leader', async () => {
        const l = await lead(r, 'engine-a');
        expect(l.candidate).to.equal('engine-a');
        expect(l.lost).to.equal(false);
        expect(await r.currentLeader()).to.equal('engine-a');
      });

      it('answers undefined when nobody leads', async () => {
        expect(await r.currentLeader()).to.equal(undefined);
      });

      it('lets a second campaigner wait until the leader resigns', async () => {
        const a = await lead(r, 'engine-a');
        const peer = await subject.peer();
        let bLeads = false;
        const b = peer.campaign('engine-b', 5, new AbortController().signal).then((x) => {
          bLeads = true;
          return x;
        });
        // The second campaign stays pending while the first leader holds on.
        await new Promise((resolve) => setImmediate(resolve));
        expect(await r.currentLeader()).to.equal('engine-a');
        expect(bLeads).to.equal(false);
        let told = false;
        a.onLost(() => (told = true));
        await a.resign();
        const leadershipB = await b;
        expect(leadershipB.candidate).to.equal('engine-b');
        expect(await r.currentLeader()).to.equal('engine-b');
        await eventually(() => expect(told).to.equal(true));
        await leadershipB.resign();
      });

      it('rejects a campaign with ABORTED when its signal aborts', async () => {
        await lead(r, 'engine-a');
        const peer = await subject.peer();
        const ac = new AbortController();
        const pending = peer.campaign('engine-b', 5, ac.signal).catch((e: unknown) => e);
        ac.abort();
        const err = await pending;
        expect(isFleetError(err, 'ABORTED'), String(err)).to.equal(true);
      });
    });
  });
}
