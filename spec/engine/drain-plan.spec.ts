import { expect } from 'chai';
import { describe, it } from 'mocha';

import type { SchedulableUnit } from '../../engine/cluster-snapshot.js';
import {
  applyDrainDecision,
  placeOffWith,
  planDrains,
  type DrainInput,
  type DrainUnitState,
  type OffPlacement,
} from '../../engine/drain-plan.js';
import { planCluster } from '../../engine/scheduler.js';
import { applyChanges } from '../../engine/schedule-plan.js';
import type { DrainMark, DrainProgress, DrainRecord } from '../../registry/model.js';
import type { DesiredState } from '../../unit/states.js';
import { validUnit } from '../helpers/unit-builders.js';

function unit(
  name: string,
  fleet: readonly string[] = [],
  desiredState: DesiredState = 'launched',
): SchedulableUnit {
  const u = validUnit(name, fleet);
  return { name: u.name, hash: u.hash, desiredState, fleet: u.fleet };
}

function mark(machine: string, maxParallel = 1, force = false): DrainMark {
  return { machine, maxParallel, force, requestedAt: 0 };
}

function active(
  unitName: string,
  machine: string,
  units: readonly SchedulableUnit[],
  activeState = 'active',
) {
  const u = units.find((x) => x.name === unitName);
  return {
    machine,
    hash: u?.hash ?? '',
    activeState,
    subState: activeState === 'active' ? 'running' : 'dead',
  };
}

/** An oracle that places every unit on `machine`, except those listed as unplaceable. */
function oracle(machine: string, unplaceable: Record<string, string> = {}) {
  const asked: string[][] = [];
  const fn = (units: readonly string[]): Map<string, OffPlacement> => {
    asked.push([...units]);
    return new Map(
      units.map((u): [string, OffPlacement] => {
        const reason = unplaceable[u];
        return [u, reason === undefined ? { kind: 'placed', machine } : { kind: 'unplaceable', reason }];
      }),
    );
  };
  return { fn, asked };
}

function input(over: Partial<DrainInput> & Pick<DrainInput, 'units' | 'drains'>): DrainInput {
  return {
    machines: new Set(['m1', 'm2', 'm3']),
    schedule: new Map(),
    states: new Map(),
    placeOff: oracle('m2').fn,
    ...over,
  };
}

describe('engine/drain-plan: the drain decision', () => {
  describe('one decision', () => {
    it('marks draining machines unschedulable and does nothing else without a drain', () => {
      const units = [unit('a.service')];
      const none = planDrains(input({ units, drains: [], schedule: new Map([['a.service', 'm1']]) }));
      expect([...none.unschedulable]).to.deep.equal([]);
      expect([...none.held]).to.deep.equal([]);
      expect(none.progress.size).to.equal(0);
      const one = planDrains(input({ units, drains: [{ mark: mark('m3') }] }));
      expect([...one.unschedulable]).to.deep.equal(['m3']);
      expect(one.progress.get('m3')).to.deep.equal({
        state: 'drained',
        moving: {},
        moved: [],
        stuck: [],
        forced: [],
        failed: [],
      });
    });

    interface StartCase {
      readonly name: string;
      readonly units: readonly SchedulableUnit[];
      readonly maxParallel: number;
      readonly unplaceable?: Record<string, string>;
      readonly stopping: readonly string[];
      readonly stuck: readonly string[];
    }
    const startCases: readonly StartCase[] = [
      {
        name: 'takes one unit, by name, with the default limit',
        units: [unit('b.service'), unit('a.service'), unit('c.service')],
        maxParallel: 1,
        stopping: ['a.service'],
        stuck: [],
      },
      {
        name: 'takes as many units as max-parallel allows',
        units: [unit('b.service'), unit('a.service'), unit('c.service')],
        maxParallel: 2,
        stopping: ['a.service', 'b.service'],
        stuck: [],
      },
      {
        name: 'lists a unit pinned by MachineID, full or short, and moves the others',
        units: [unit('a.service', ['MachineID=m1']), unit('b.service')],
        maxParallel: 3,
        stopping: ['b.service'],
        stuck: ['a.service'],
      },
      {
        name: 'lists the followers (MachineOf, chains) of a pinned unit',
        units: [
          unit('a.service', ['MachineID=m1']),
          unit('b.service', ['MachineOf=a.service']),
          unit('c.service', ['MachineOf=b.service']),
          unit('d.service'),
        ],
        maxParallel: 3,
        stopping: ['d.service'],
        stuck: ['a.service', 'b.service', 'c.service'],
      },
      {
        name: 'moves a unit with its followers as one group, which may exceed the limit alone',
        units: [unit('a.service'), unit('b.service', ['MachineOf=a.service']), unit('c.service')],
        maxParallel: 1,
        stopping: ['a.service', 'b.service'],
        stuck: [],
      },
      {
        name: 'does not start a group that would exceed the limit beside another move',
        units: [unit('a.service'), unit('b.service'), unit('c.service', ['MachineOf=b.service'])],
        maxParallel: 2,
        stopping: ['a.service'],
        stuck: [],
      },
      {
        name: 'lists a unit the scheduler cannot place elsewhere, with its reason, and its group',
        units: [unit('a.service'), unit('b.service', ['MachineOf=a.service']), unit('c.service')],
        maxParallel: 1,
        unplaceable: { 'a.service': 'no machine can run it: draining excludes m1' },
        stopping: ['c.service'],
        stuck: ['a.service', 'b.service'],
      },
    ];
    for (const c of startCases) {
      it(c.name, () => {
        const schedule = new Map(c.units.map((u) => [u.name, 'm1']));
        const o = oracle('m2', c.unplaceable);
        const d = planDrains(
          input({ units: c.units, drains: [{ mark: mark('m1', c.maxParallel) }], schedule, placeOff: o.fn }),
        );
        const p = d.progress.get('m1');
        expect(Object.keys(p?.moving ?? {})).to.deep.equal(c.stopping);
        expect(Object.values(p?.moving ?? {}).every((x) => x === 'stopping')).to.equal(true);
        expect([...d.held].sort()).to.deep.equal([...c.stopping]);
        expect(p?.stuck.map((s) => s.unit)).to.deep.equal(c.stuck);
        expect(p?.state).to.equal('draining');
        expect(o.asked.length).to.equal(1);
      });
    }

    it('says why each unit cannot move', () => {
      const units = [
        unit('a.service', ['MachineID=m1']),
        unit('b.service', ['MachineOf=a.service']),
        unit('c.service'),
        unit('d.service', ['MachineOf=c.service']),
      ];
      const schedule = new Map(units.map((u) => [u.name, 'm1']));
      const d = planDrains(
        input({
          units,
          drains: [{ mark: mark('m1') }],
          schedule,
          placeOff: oracle('m2', { 'c.service': 'no machine can run it: X' }).fn,
        }),
      );
      expect(d.progress.get('m1')?.stuck).to.deep.equal([
        { unit: 'a.service', reason: 'MachineID m1 pins it to m1' },
        { unit: 'b.service', reason: 'MachineOf a.service, which cannot leave m1' },
        { unit: 'c.service', reason: 'no machine can run it: X' },
        {
          unit: 'd.service',
          reason: 'moves with c.service, and c.service cannot move: no machine can run it: X',
        },
      ]);
      expect(d.progress.get('m1')?.state).to.equal('drained');
    });

    it('with force, holds the units that cannot move (stopped) and lists them as forced', () => {
      const units = [unit('a.service', ['MachineID=m1']), unit('b.service')];
      const schedule = new Map(units.map((u) => [u.name, 'm1']));
      const d = planDrains(input({ units, drains: [{ mark: mark('m1', 1, true) }], schedule }));
      expect([...d.held].sort()).to.deep.equal(['a.service', 'b.service']);
      expect(d.progress.get('m1')?.forced.map((f) => f.unit)).to.deep.equal(['a.service']);
      expect(d.progress.get('m1')?.stuck).to.deep.equal([]);
      // Next pass: the forced unit is no longer scheduled anywhere and stays held.
      const after = planDrains(
        input({
          units,
          drains: [{ mark: mark('m1', 1, true), progress: d.progress.get('m1') }],
          schedule: new Map([['b.service', 'm1']]),
          states: new Map([['b.service', [active('b.service', 'm1', units)]]]),
        }),
      );
      expect(after.held.has('a.service')).to.equal(true);
      expect(after.progress.get('m1')?.forced.map((f) => f.unit)).to.deep.equal(['a.service']);
    });

    it('ignores global, inactive and other machines’ units', () => {
      const units = [
        unit('g.service', ['Global=true']),
        unit('i.service', [], 'inactive'),
        unit('o.service'),
      ];
      const d = planDrains(
        input({ units, drains: [{ mark: mark('m1') }], schedule: new Map([['o.service', 'm2']]) }),
      );
      expect(d.held.size).to.equal(0);
      expect(d.progress.get('m1')?.state).to.equal('drained');
    });

    interface PhaseCase {
      readonly name: string;
      readonly phase: 'stopping' | 'starting';
      readonly scheduledOn?: string;
      readonly states: readonly DrainUnitState[];
      readonly live?: boolean;
      readonly desired?: DesiredState;
      readonly expect: 'stopping' | 'starting' | 'moved' | 'failed' | 'gone';
    }
    const u = unit('a.service');
    const phaseCases: readonly PhaseCase[] = [
      {
        name: 'stopping, still active here: stays held',
        phase: 'stopping',
        states: [active('a.service', 'm1', [u])],
        expect: 'stopping',
      },
      {
        name: 'stopping, deactivating here: stays held',
        phase: 'stopping',
        states: [active('a.service', 'm1', [u], 'deactivating')],
        expect: 'stopping',
      },
      {
        name: 'stopping, inactive here: released',
        phase: 'stopping',
        states: [active('a.service', 'm1', [u], 'inactive')],
        expect: 'starting',
      },
      {
        name: 'stopping, failed here: released',
        phase: 'stopping',
        states: [active('a.service', 'm1', [u], 'failed')],
        expect: 'starting',
      },
      { name: 'stopping, no state here: released', phase: 'stopping', states: [], expect: 'starting' },
      {
        name: 'stopping, machine gone: released',
        phase: 'stopping',
        states: [active('a.service', 'm1', [u])],
        live: false,
        expect: 'starting',
      },
      { name: 'starting, not placed yet: waits', phase: 'starting', states: [], expect: 'starting' },
      {
        name: 'starting, placed, no state: waits',
        phase: 'starting',
        scheduledOn: 'm2',
        states: [],
        expect: 'starting',
      },
      {
        name: 'starting, activating there: waits',
        phase: 'starting',
        scheduledOn: 'm2',
        states: [active('a.service', 'm2', [u], 'activating')],
        expect: 'starting',
      },
      {
        name: 'starting, active there: moved',
        phase: 'starting',
        scheduledOn: 'm2',
        states: [active('a.service', 'm2', [u])],
        expect: 'moved',
      },
      {
        name: 'starting, active with another hash: waits',
        phase: 'starting',
        scheduledOn: 'm2',
        states: [{ ...active('a.service', 'm2', [u]), hash: 'old' }],
        expect: 'starting',
      },
      {
        name: 'starting, failed there: failed',
        phase: 'starting',
        scheduledOn: 'm2',
        states: [active('a.service', 'm2', [u], 'failed')],
        expect: 'failed',
      },
      {
        name: 'starting, loaded unit loaded there: moved',
        phase: 'starting',
        scheduledOn: 'm2',
        desired: 'loaded',
        states: [active('a.service', 'm2', [u], 'inactive')],
        expect: 'moved',
      },
      {
        name: 'destroyed meanwhile: dropped',
        phase: 'starting',
        scheduledOn: 'm2',
        desired: 'inactive',
        states: [],
        expect: 'gone',
      },
    ];
    for (const c of phaseCases) {
      it(`moves on: ${c.name}`, () => {
        const units = [{ ...u, desiredState: c.desired ?? 'launched' }];
        const progress: DrainProgress = {
          state: 'draining',
          moving: { 'a.service': c.phase },
          moved: [],
          stuck: [],
          forced: [],
          failed: [],
        };
        const d = planDrains(
          input({
            units,
            drains: [{ mark: mark('m1'), progress }],
            machines: new Set(c.live === false ? ['m2'] : ['m1', 'm2']),
            schedule: new Map(c.scheduledOn === undefined ? [] : [['a.service', c.scheduledOn]]),
            states: new Map([['a.service', c.states]]),
          }),
        );
        const p = d.progress.get('m1');
        const got =
          p?.moving['a.service'] ??
          (p?.moved.includes('a.service')
            ? 'moved'
            : p?.failed.some((f) => f.unit === 'a.service')
              ? 'failed'
              : 'gone');
        expect(got).to.equal(c.expect);
        expect(d.held.has('a.service')).to.equal(c.expect === 'stopping');
        expect(p?.state).to.equal(
          c.expect === 'stopping' || c.expect === 'starting' ? 'draining' : 'drained',
        );
      });
    }
  });

  describe('a whole drain, simulated with the real scheduler', () => {
    /**
     * Runs engine passes (drain decision, then the scheduler on the snapshot with it applied)
     * against simulated agents, which stop a unit at once and start one a pass after it is
     * placed. Checks after every pass that no unit runs twice and that at most `maxParallel` of
     * the drained machine's units are down.
     */
    function simulate(units: readonly SchedulableUnit[], machines: readonly string[], maxParallel: number) {
      let schedule = new Map<string, string>();
      const running = new Map<string, string>(); // unit -> machine where it runs
      let drains: DrainRecord[] = [];
      const snapshotOf = (s: ReadonlyMap<string, string>) => ({
        units,
        machines: machines.map((id) => ({ id, metadata: {} })),
        schedule: s,
      });
      const agents = (): void => {
        for (const [name, m] of [...running]) if (schedule.get(name) !== m) running.delete(name);
        for (const [name, m] of schedule) if (!running.has(name)) running.set(name, m);
      };
      const statesOf = () =>
        new Map(
          [...running].map(([name, m]): [string, DrainUnitState[]] => [name, [active(name, m, units)]]),
        );
      // Settle the cluster before the drain.
      schedule = applyChanges(schedule, planCluster(snapshotOf(schedule)).changes);
      agents();
      const drained = 'm1';
      const before = [...schedule].filter(([, m]) => m === drained).map(([u]) => u);
      drains = [{ mark: mark(drained, maxParallel) }];
      let maxDown = 0;
      const startsOf = new Map<string, number>();
      const directMoves: string[] = [];
      for (let pass = 0; pass < 200; pass++) {
        const base = snapshotOf(schedule);
        const unschedulable = new Set([drained]);
        const decision = planDrains({
          drains,
          units,
          machines: new Set(machines),
          schedule,
          states: statesOf(),
          placeOff: placeOffWith(base, unschedulable, planCluster),
        });
        const plan = planCluster(applyDrainDecision(base, decision));
        schedule = applyChanges(schedule, plan.changes);
        const was = new Map(running);
        agents();
        for (const [name, m] of running) {
          if (was.get(name) === m) continue;
          startsOf.set(name, (startsOf.get(name) ?? 0) + 1);
          // Started elsewhere in the pass it left: stop and start would overlap.
          if (was.has(name)) directMoves.push(name);
        }
        const down = before.filter((name) => !running.has(name)).length;
        maxDown = Math.max(maxDown, down);
        drains = [{ mark: drains[0]?.mark ?? mark(drained), progress: decision.progress.get(drained) }];
        if (decision.progress.get(drained)?.state === 'drained') break;
      }
      return { schedule, progress: drains[0]?.progress, maxDown, before, startsOf, directMoves };
    }

    const machines = ['m1', 'm2', 'm3'];
    for (let n = 0; n <= 6; n++) {
      for (let maxParallel = 1; maxParallel <= 4; maxParallel++) {
        for (const pinned of [0, 1, 2]) {
          it(`drains ${n} units (${pinned} pinned) with max-parallel ${maxParallel}`, () => {
            const units = Array.from({ length: n }, (_, i) =>
              unit(`u${i}.service`, i < pinned ? ['MachineID=m1'] : []),
            ).concat(n > 0 ? [unit('g.service', ['Global=true'])] : []);
            const r = simulate(units, machines, maxParallel);
            const pinnedHere = r.before.filter((name) => Number(name.slice(1, 2)) < pinned);
            expect(r.progress?.state).to.equal('drained');
            expect(r.maxDown).to.be.at.most(maxParallel);
            expect([...r.schedule].filter(([, m]) => m === 'm1').map(([u]) => u)).to.deep.equal(pinnedHere);
            expect(r.progress?.stuck.map((s) => s.unit)).to.deep.equal(pinnedHere);
            expect(r.progress?.moved).to.deep.equal(r.before.filter((x) => !pinnedHere.includes(x)).sort());
            for (const name of r.progress?.moved ?? []) expect(r.startsOf.get(name)).to.equal(1);
            expect(r.directMoves).to.deep.equal([]);
          });
        }
      }
    }
  });
});
