import { expect } from 'chai';
import { describe, it } from 'mocha';
import type { ClusterIndex } from '../../engine/cluster-index.js';
import type { SchedulePlan } from '../../engine/schedule-plan.js';
import { placeNewUnit, planClusterIndexed } from '../../engine/scheduler.js';
import type { SchedulableUnit } from '../../engine/cluster-snapshot.js';
import {
  compact,
  globalUnit,
  job,
  machine,
  machines,
  snapshot,
  type SnapshotSpec,
} from './scheduler-fixtures.js';

function indexed(spec: SnapshotSpec): ClusterIndex {
  return planClusterIndexed(snapshot(spec)).index;
}

function placed(index: ClusterIndex, unit: SchedulableUnit): SchedulePlan {
  const result = placeNewUnit(index, unit);
  if (result.kind !== 'planned') throw new Error(`expected a plan, got: ${result.reason}`);
  return result.plan;
}

describe('engine/scheduler placeNewUnit', () => {
  it('places a new unit on the least-loaded machine and updates the index', () => {
    const index = indexed({ machines: machines('m1', 'm2'), units: [job('a'), job('b'), job('c')] });
    expect(compact(placed(index, job('d')))).to.deep.equal(['+d@m2']);
    expect(index.placement('d')).to.equal('m2');
    expect(index.machineLoad('m2')).to.equal(2);
    expect(compact(placed(index, job('e')))).to.deep.equal(['+e@m1']);
  });

  it('respects the constraints of the units already placed', () => {
    const index = indexed({
      machines: machines('m1', 'm2'),
      units: [job('web@1.service', { conflicts: ['web@*.service'] }), job('x')],
    });
    // m1: web@1, m2: x. A new web@ instance must avoid m1 although the tie would pick it.
    expect(compact(placed(index, job('web@2.service')))).to.deep.equal(['+web@2.service@m2']);
  });

  it('reports a new unit it cannot place, with the reason', () => {
    const index = indexed({ machines: machines('m1'), units: [] });
    const plan = placed(index, job('p', { metadata: { gpu: 'yes' } }));
    expect(plan.changes).to.deep.equal([]);
    expect(plan.unplaceable.map((u) => u.reason)).to.deep.equal([
      'no machine can run it: MachineMetadata gpu=yes excludes m1',
    ]);
    expect(index.unplaceable().map((u) => u.unit)).to.deep.equal(['p']);
  });

  it('places the followers that were waiting for the new unit', () => {
    const index = indexed({
      machines: machines('m1', 'm2'),
      units: [job('a'), job('f', { machineOf: ['p'] })],
    });
    expect(index.unplaceable().map((u) => u.reason)).to.deep.equal(['MachineOf peer p does not exist']);
    expect(compact(placed(index, job('p')))).to.deep.equal(['+p@m2', '+f@m2']);
    expect(index.unplaceable()).to.deep.equal([]);
  });

  it('pushes the units a new unit replaces', () => {
    const index = indexed({ machines: machines('m1', 'm2'), units: [job('old'), job('a'), job('b')] });
    // m1: a, old; m2: b. Even the loads out, so that the new unit lands on m1.
    expect(compact(placed(index, job('c')))).to.deep.equal(['+c@m2']);
    const plan = placed(index, job('new', { replaces: ['old'] }));
    expect(compact(plan)).to.deep.equal(['-old@m1', '+new@m1', '+old@m2']);
  });

  it('counts a new global unit as load on the machines that run it', () => {
    const index = indexed({ machines: [machine('m1', { edge: 'y' }), machine('m2')], units: [] });
    expect(placed(index, globalUnit('g', { metadata: { edge: 'y' } })).changes).to.deep.equal([]);
    expect([index.machineLoad('m1'), index.machineLoad('m2')]).to.deep.equal([1, 0]);
    expect(index.globalUnitsOn('m1')).to.deep.equal(['g']);
    expect(compact(placed(index, job('a')))).to.deep.equal(['+a@m2']);
  });

  it('lets a new global unit displace a later one by name it conflicts with', () => {
    const index = indexed({
      machines: machines('m1'),
      units: [globalUnit('g2'), job('f', { machineOf: ['g2'] })],
    });
    expect(index.placement('f')).to.equal('m1');
    const plan = placed(index, globalUnit('g1', { conflicts: ['g2'] }));
    expect(compact(plan)).to.deep.equal(['-f@m1']);
    expect(plan.changes[0]?.reason).to.equal('MachineOf peer g2 no longer runs on m1');
    expect(plan.unplaceable.map((u) => u.reason)).to.deep.equal([
      'no machine can run it: MachineOf g2 excludes m1',
    ]);
    expect(index.globalUnitsOn('m1')).to.deep.equal(['g1']);
  });

  it('records a new inactive unit without placing it', () => {
    const index = indexed({ machines: machines('m1'), units: [] });
    expect(placed(index, job('a', { state: 'inactive' }))).to.deep.equal({ changes: [], unplaceable: [] });
    expect(index.placement('a')).to.equal(undefined);
  });

  it('asks for a full plan for a unit it already knows', () => {
    const index = indexed({ machines: machines('m1'), units: [job('a')] });
    expect(placeNewUnit(index, job('a')).kind).to.equal('full-plan-needed');
  });

  it('asks for a full plan when the new unit closes a cycle', () => {
    const index = indexed({ machines: machines('m1', 'm2'), units: [job('a', { replaces: ['b'] })] });
    expect(placeNewUnit(index, job('b', { replaces: ['a'] }))).to.deep.equal({
      kind: 'full-plan-needed',
      reason: 'unit b closes a MachineOf or Replaces cycle',
    });
  });
});
