import { expect } from 'chai';
import { describe, it } from 'mocha';
import type { ClusterSnapshot } from '../../engine/cluster-snapshot.js';
import { applyChanges } from '../../engine/schedule-plan.js';
import { placeNewUnit, planCluster, planClusterIndexed } from '../../engine/scheduler.js';
import { globMatches } from '../../unit/glob.js';
import { Random } from '../helpers/random.js';
import {
  firstByName,
  model,
  randomCluster,
  randomState,
  randomUnits,
  shuffled,
  violations,
} from './cluster-model.js';
import { globalUnit, job } from './scheduler-fixtures.js';

/**
 * Property tests over random clusters (seeded; a failure prints its seed), checked against the
 * naive model in cluster-model.ts.
 */

const CLUSTERS = 300;

function eachCluster(title: string, body: (snap: ClusterSnapshot, seed: number) => void): void {
  it(title, () => {
    for (let seed = 1; seed <= CLUSTERS; seed++) {
      const snap = randomCluster(seed);
      try {
        body(snap, seed);
      } catch (e) {
        throw new Error(`seed ${seed}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
  });
}

describe('engine/scheduler properties', () => {
  eachCluster('never places a unit where a constraint forbids it, and accounts for every unit', (snap) => {
    expect(violations(snap, planCluster(snap))).to.deep.equal([]);
  });

  eachCluster('counts global units where their agents will run them', (snap) => {
    const { plan, index } = planClusterIndexed(snap);
    const w = model(snap, applyChanges(snap.schedule, plan.changes));
    for (const id of w.machines.keys()) {
      const expected = (w.globalsOn.get(id) ?? []).map((g) => g.name);
      expect(index.globalUnitsOn(id), id).to.deep.equal(expected);
      expect(index.machineLoad(id), id).to.equal((w.jobsOn.get(id) ?? []).length + expected.length);
    }
  });

  eachCluster('gives the same plan for the same input, in any order', (snap, seed) => {
    const rnd = new Random(seed * 7919);
    const again = planCluster({
      units: shuffled(snap.units, rnd),
      machines: shuffled(snap.machines, rnd),
      schedule: new Map(shuffled([...snap.schedule], rnd)),
    });
    expect(again).to.deep.equal(planCluster(snap));
  });

  eachCluster('changes nothing when planning its own result again', (snap) => {
    const plan = planCluster(snap);
    const next = planCluster({ ...snap, schedule: applyChanges(snap.schedule, plan.changes) });
    expect(next.changes).to.deep.equal([]);
    expect(next.unplaceable.map((u) => u.unit)).to.deep.equal(plan.unplaceable.map((u) => u.unit));
  });

  eachCluster('never moves an unconstrained unit whose machine is still there', (snap) => {
    const plan = planCluster(snap);
    const live = new Set(snap.machines.map((m) => m.id));
    const patterns = snap.units.flatMap((u) => [...u.fleet.conflicts, ...u.fleet.replaces]);
    const moved = new Set(plan.changes.filter((c) => c.kind === 'unschedule').map((c) => c.unit));
    for (const u of firstByName(snap.units, (x) => x.name).values()) {
      const f = u.fleet;
      const plain =
        !f.global &&
        u.desiredState !== 'inactive' &&
        f.machineId === undefined &&
        f.machineOf.length === 0 &&
        f.machineMetadata.length === 0 &&
        f.conflicts.length === 0 &&
        f.replaces.length === 0 &&
        !patterns.some((p) => globMatches(p, u.name));
      const where = snap.schedule.get(u.name);
      if (plain && where !== undefined && live.has(where)) expect(moved.has(u.name), u.name).to.equal(false);
    }
  });

  it('spreads unconstrained units evenly: max - min <= 1', () => {
    for (let seed = 1; seed <= CLUSTERS; seed++) {
      const rnd = new Random(seed);
      const machines = Array.from({ length: rnd.int(1, 30) }, (_, i) => ({
        id: `m${String(i).padStart(2, '0')}`,
        metadata: {},
      }));
      const units = Array.from({ length: rnd.int(0, 200) }, (_, i) =>
        i % 25 === 3
          ? globalUnit(`g${i}`, { state: randomState(rnd) })
          : job(`u${i}`, { state: rnd.bool(0.1) ? 'inactive' : 'launched' }),
      );
      const { index } = planClusterIndexed({ units, machines, schedule: new Map() });
      const loads = machines.map((m) => index.machineLoad(m.id) ?? 0);
      expect(Math.max(...loads) - Math.min(...loads), `seed ${seed}`).to.be.at.most(1);
    }
  });

  eachCluster(
    'places one new unit by the same rules, leaving nothing for a full plan to change',
    (snap, seed) => {
      const rnd = new Random(seed * 104729);
      const { plan, index } = planClusterIndexed(snap);
      const before = applyChanges(snap.schedule, plan.changes);
      const extra =
        randomUnits(rnd, snap.machines).find((u) => !snap.units.some((x) => x.name === u.name)) ??
        job(`new-${seed}.service`);
      const grown: ClusterSnapshot = { ...snap, units: [...snap.units, extra], schedule: before };
      const result = placeNewUnit(index, extra);
      if (result.kind === 'full-plan-needed') {
        // Only a new cycle needs a full plan, which breaks it without leaving out a unit that
        // was scheduled: the new unit, or another one that was not scheduled, is left out.
        const full = planCluster(grown);
        const left = full.unplaceable.filter((u) => u.cause.kind === 'cycle');
        expect(left.some((u) => u.cause.kind === 'cycle' && u.cause.units.includes(extra.name))).to.equal(
          true,
        );
        for (const u of left) expect(before.has(u.unit), `${u.unit} was scheduled`).to.equal(false);
        return;
      }
      const after = applyChanges(before, result.plan.changes);
      expect(Object.fromEntries(index.schedule())).to.deep.equal(Object.fromEntries(after));
      // The whole unplaceable list, as the index now knows it, stands for the plan's.
      expect(
        violations(grown, { changes: result.plan.changes, unplaceable: index.unplaceable() }),
      ).to.deep.equal([]);
      const again = planCluster({ ...grown, schedule: after });
      expect(again.changes).to.deep.equal([]);
      expect(again.unplaceable.map((u) => u.unit)).to.deep.equal(index.unplaceable().map((u) => u.unit));
    },
  );
});
