import { expect } from 'chai';
import { describe, it } from 'mocha';
import type { MachineInfo, SchedulableUnit } from '../../engine/cluster-snapshot.js';
import { planCluster } from '../../engine/scheduler.js';
import { compact, globalUnit, job, machine, machines, run, snapshot } from './scheduler-fixtures.js';

/**
 * Table tests: each case is a cluster (machines, units, current schedule) and what the plan must
 * leave: the whole final schedule, exactly which units are unplaceable and why, and, where the
 * order matters, the changes themselves.
 */
interface Case {
  readonly title: string;
  readonly machines: readonly MachineInfo[];
  readonly units: readonly SchedulableUnit[];
  readonly schedule?: Readonly<Record<string, string>>;
  /** The complete schedule after the plan. */
  readonly expect: Readonly<Record<string, string>>;
  /** Every unplaceable unit with its reason (a string is matched exactly). */
  readonly unplaceable?: Readonly<Record<string, string | RegExp>>;
  /** The changes in `compact` form, in order. */
  readonly changes?: readonly string[];
}

function check(c: Case): void {
  const result = run(c);
  expect(result.schedule).to.deep.equal(c.expect);
  const expected = c.unplaceable ?? {};
  expect(Object.keys(result.reasons).sort()).to.deep.equal(Object.keys(expected).sort());
  for (const [unit, reason] of Object.entries(expected)) {
    if (typeof reason === 'string') expect(result.reasons[unit], unit).to.equal(reason);
    else expect(result.reasons[unit], unit).to.match(reason);
  }
  if (c.changes !== undefined) expect(compact(result.plan)).to.deep.equal(c.changes);
}

function table(cases: readonly Case[]): void {
  for (const c of cases) {
    it(c.title, () => {
      check(c);
    });
  }
}

const m3 = machines('m1', 'm2', 'm3');

describe('engine/scheduler', () => {
  describe('least-loaded placement', () => {
    table([
      {
        title: 'spreads units over machines in name order, ties to the lowest machine ID',
        machines: m3,
        units: [job('d'), job('b'), job('a'), job('c')],
        expect: { a: 'm1', b: 'm2', c: 'm3', d: 'm1' },
        changes: ['+a@m1', '+b@m2', '+c@m3', '+d@m1'],
      },
      {
        title: 'counts units already scheduled as load',
        machines: m3,
        units: [job('x'), job('y'), job('z'), job('a'), job('b')],
        schedule: { x: 'm1', y: 'm1', z: 'm2' },
        expect: { x: 'm1', y: 'm1', z: 'm2', a: 'm3', b: 'm2' },
      },
      {
        title: 'orders machine IDs byte-wise (upper case before lower case)',
        machines: machines('a1', 'B2'),
        units: [job('u')],
        expect: { u: 'B2' },
      },
      {
        title: 'counts a global unit as load where its metadata holds',
        machines: [machine('m1', { role: 'edge' }), machine('m2')],
        units: [globalUnit('g', { metadata: { role: 'edge' } }), job('a'), job('b')],
        expect: { a: 'm2', b: 'm1' },
      },
      {
        title: 'counts a global unit as load whatever its desired state, as fleet did',
        machines: [machine('m1', { role: 'edge' }), machine('m2')],
        units: [globalUnit('g', { metadata: { role: 'edge' }, state: 'inactive' }), job('a')],
        expect: { a: 'm2' },
      },
      {
        title: 'does not count a global unit where it conflicts with a scheduled unit',
        machines: machines('m1', 'm2'),
        units: [globalUnit('g', { conflicts: ['x'] }), job('x'), job('a')],
        schedule: { x: 'm1' },
        // m1: x; m2: g. Both load 1, so the tie goes to m1.
        expect: { x: 'm1', a: 'm1' },
      },
      {
        title: 'does not schedule global units and unschedules them if scheduled',
        machines: machines('m1'),
        units: [globalUnit('g')],
        schedule: { g: 'm1' },
        expect: {},
        changes: ['-g@m1'],
      },
      {
        title: 'leaves units with desired state inactive unscheduled',
        machines: machines('m1'),
        units: [job('a', { state: 'inactive' }), job('b', { state: 'loaded' })],
        expect: { b: 'm1' },
      },
      {
        title: 'plans nothing for an empty cluster',
        machines: [],
        units: [],
        expect: {},
        changes: [],
      },
      {
        title: 'reports every unit unplaceable when there are no machines',
        machines: [],
        units: [job('a'), globalUnit('g')],
        expect: {},
        unplaceable: { a: 'no machines in the cluster' },
      },
    ]);
  });

  describe('MachineID', () => {
    const ids = [machine('0123456789abcdef'), machine('0123456799999999'), machine('fedcba9876543210')];
    table([
      {
        title: 'places a unit on the machine its MachineID names, whatever the load',
        machines: ids,
        units: [job('a'), job('b'), job('p', { machineId: '0123456789abcdef' })],
        expect: { a: '0123456789abcdef', b: '0123456799999999', p: '0123456789abcdef' },
      },
      {
        title: 'accepts the 8-character short ID, as fleet did',
        machines: ids,
        units: [job('p', { machineId: 'fedcba98' })],
        expect: { p: 'fedcba9876543210' },
      },
      {
        title: 'picks the least loaded of the machines sharing a short ID',
        machines: ids,
        units: [job('a'), job('p', { machineId: '01234567' })],
        expect: { a: '0123456789abcdef', p: '0123456799999999' },
      },
      {
        title: 'accepts no other prefix of the ID',
        machines: ids,
        units: [job('p', { machineId: 'fedcba9' }), job('q', { machineId: 'fedcba987' })],
        expect: {},
        unplaceable: {
          p: 'no machine can run it: MachineID fedcba9 excludes 0123456789abcdef, 0123456799999999, fedcba9876543210',
          q: /^no machine can run it: MachineID fedcba987 excludes /,
        },
      },
      {
        title: 'also requires the named machine to satisfy the other constraints',
        machines: [machine('m1', { disk: 'hdd' }), machine('m2', { disk: 'ssd' })],
        units: [job('p', { machineId: 'm1', metadata: { disk: 'ssd' } })],
        expect: {},
        unplaceable: {
          p: 'no machine can run it: MachineID m1 excludes m2; MachineMetadata disk=ssd excludes m1',
        },
      },
      {
        title: 'moves a unit whose MachineID no longer names its machine',
        machines: machines('m1', 'm2'),
        units: [job('p', { machineId: 'm2' })],
        schedule: { p: 'm1' },
        expect: { p: 'm2' },
        changes: ['-p@m1', '+p@m2'],
      },
    ]);
  });

  describe('MachineMetadata', () => {
    const zoned = [
      machine('m1', { region: 'us', disk: 'hdd' }),
      machine('m2', { region: 'eu', disk: 'hdd' }),
      machine('m3', { region: 'eu', disk: 'ssd' }),
      machine('m4', { region: 'ap', disk: 'ssd' }),
    ];
    table([
      {
        title: 'requires every key (AND) and one of its values (OR)',
        machines: zoned,
        units: [
          job('a', { metadata: { region: ['eu', 'ap'], disk: 'ssd' } }),
          job('b', { metadata: { region: ['eu', 'ap'], disk: 'ssd' } }),
          job('c', { metadata: { region: 'eu' } }),
        ],
        expect: { a: 'm3', b: 'm4', c: 'm2' },
      },
      {
        title: 'compares values exactly and case-sensitively',
        machines: zoned,
        units: [job('a', { metadata: { region: 'EU' } })],
        expect: {},
        unplaceable: { a: 'no machine can run it: MachineMetadata region=EU excludes m1, m2, m3, m4' },
      },
      {
        title: 'reports a machine under the first key it fails',
        machines: zoned,
        units: [job('a', { metadata: { region: 'eu', disk: 'nvme' } })],
        expect: {},
        unplaceable: {
          a: 'no machine can run it: MachineMetadata disk=nvme excludes m2, m3; MachineMetadata region=eu excludes m1, m4',
        },
      },
      {
        title: 'treats a missing key as not matching',
        machines: [machine('m1'), machine('m2', { gpu: 'yes' })],
        units: [job('a', { metadata: { gpu: 'yes' } }), job('b', { metadata: { gpu: 'yes' } })],
        expect: { a: 'm2', b: 'm2' },
      },
      {
        title: 'moves a unit whose machine no longer has the metadata',
        machines: zoned,
        units: [job('a', { metadata: { disk: 'ssd' } })],
        schedule: { a: 'm1' },
        expect: { a: 'm3' },
        changes: ['-a@m1', '+a@m3'],
      },
    ]);
  });

  describe('MachineOf', () => {
    table([
      {
        title: 'places a follower on its peer machine',
        machines: m3,
        units: [job('a'), job('b'), job('peer'), job('f', { machineOf: ['peer'] })],
        expect: { a: 'm1', b: 'm2', peer: 'm3', f: 'm3' },
      },
      {
        title: 'resolves a chain in one pass whatever the name order, peers first',
        machines: m3,
        units: [job('a1', { machineOf: ['b1'] }), job('b1', { machineOf: ['c1'] }), job('c1'), job('x')],
        expect: { c1: 'm1', b1: 'm1', a1: 'm1', x: 'm2' },
        changes: ['+c1@m1', '+b1@m1', '+a1@m1', '+x@m2'],
      },
      {
        title: 'requires every peer on the same machine',
        machines: m3,
        units: [job('p1'), job('p2'), job('f', { machineOf: ['p1', 'p2'] })],
        expect: { p1: 'm1', p2: 'm2' },
        unplaceable: { f: 'no machine can run it: MachineOf p1 excludes m2, m3; MachineOf p2 excludes m1' },
      },
      {
        title: 'leaves a follower unscheduled while its peer does not exist',
        machines: m3,
        units: [job('f', { machineOf: ['ghost.service'] })],
        expect: {},
        unplaceable: { f: 'MachineOf peer ghost.service does not exist' },
      },
      {
        title: 'leaves a follower unscheduled while its peer is inactive, and unschedules it',
        machines: m3,
        units: [job('p', { state: 'inactive' }), job('f', { machineOf: ['p'] })],
        schedule: { p: 'm1', f: 'm1' },
        expect: {},
        unplaceable: { f: 'MachineOf peer p has desired state inactive' },
        changes: ['-f@m1', '-p@m1'],
      },
      {
        title: 'leaves a follower unscheduled when its peer cannot be placed',
        machines: m3,
        units: [job('p', { metadata: { gpu: 'yes' } }), job('f', { machineOf: ['p'] })],
        expect: {},
        unplaceable: {
          p: 'no machine can run it: MachineMetadata gpu=yes excludes m1, m2, m3',
          f: 'MachineOf peer p could not be placed',
        },
      },
      {
        title: 'rejects a MachineOf cycle with a reason',
        machines: m3,
        units: [
          job('a', { machineOf: ['b'] }),
          job('b', { machineOf: ['a'] }),
          job('c', { machineOf: ['a'] }),
        ],
        schedule: { a: 'm1', b: 'm1' },
        expect: {},
        unplaceable: {
          a: 'MachineOf cycle: a follows b, b follows a',
          b: 'MachineOf cycle: a follows b, b follows a',
          c: 'MachineOf peer a is left out of a MachineOf or Replaces cycle',
        },
        changes: ['-a@m1', '-b@m1'],
      },
      {
        title: 'rejects a unit that names itself in MachineOf',
        machines: m3,
        units: [job('a', { machineOf: ['a'] })],
        expect: {},
        unplaceable: { a: 'MachineOf cycle: a follows a' },
      },
      {
        title: 'places a follower of a global unit on the least loaded machine running it',
        machines: [machine('m1', { role: 'db' }), machine('m2', { role: 'db' }), machine('m3')],
        units: [globalUnit('g', { metadata: { role: 'db' } }), job('a'), job('f', { machineOf: ['g'] })],
        // Loads before f: m1 g; m2 g; m3 a.
        expect: { a: 'm3', f: 'm1' },
      },
      {
        title: 'leaves a follower of an inactive global unit unscheduled',
        machines: m3,
        units: [globalUnit('g', { state: 'inactive' }), job('f', { machineOf: ['g'] })],
        expect: {},
        unplaceable: { f: 'MachineOf peer g has desired state inactive' },
      },
      {
        title: 'moves a follower to its peer',
        machines: m3,
        units: [job('p'), job('f', { machineOf: ['p'] })],
        schedule: { p: 'm2', f: 'm1' },
        expect: { p: 'm2', f: 'm2' },
        changes: ['-f@m1', '+f@m2'],
      },
      {
        title: 'moves followers together with a peer whose machine went away',
        machines: machines('m1', 'm2'),
        units: [job('a'), job('p'), job('f', { machineOf: ['p'] }), job('g', { machineOf: ['f'] })],
        schedule: { a: 'm1', p: 'm9', f: 'm9', g: 'm9' },
        expect: { a: 'm1', p: 'm2', f: 'm2', g: 'm2' },
        changes: ['-f@m9', '-g@m9', '-p@m9', '+p@m2', '+f@m2', '+g@m2'],
      },
    ]);
  });

  describe('Conflicts', () => {
    table([
      {
        title: 'keeps units matching a glob apart',
        machines: machines('m1', 'm2'),
        units: [
          job('x1'),
          job('x2'),
          job('web@1.service', { conflicts: ['web@*.service'] }),
          job('web@2.service', { conflicts: ['web@*.service'] }),
        ],
        schedule: { x1: 'm1', x2: 'm1' },
        // web@2 would go to m2 (load 1 < 2) but web@1 is there.
        expect: { x1: 'm1', x2: 'm1', 'web@1.service': 'm2', 'web@2.service': 'm1' },
      },
      {
        title: 'applies in both directions',
        machines: machines('m1', 'm2'),
        units: [job('a', { conflicts: ['b*'] }), job('b1'), job('c', { conflicts: ['a'] }), job('z')],
        schedule: { a: 'm1' },
        // b1 avoids m1 because a's pattern matches it, c because its own pattern matches a.
        expect: { a: 'm1', b1: 'm2', c: 'm2', z: 'm1' },
      },
      {
        title: 'never makes a unit conflict with itself',
        machines: machines('m1'),
        units: [job('web@1.service', { conflicts: ['web@*.service'] })],
        schedule: { 'web@1.service': 'm1' },
        expect: { 'web@1.service': 'm1' },
        changes: [],
      },
      {
        title: 'never matches with an invalid glob',
        machines: machines('m1'),
        units: [job('a', { conflicts: ['[', 'b['] }), job('b['), job('c')],
        expect: { a: 'm1', 'b[': 'm1', c: 'm1' },
      },
      {
        title: 'names the pattern and the machines when nothing fits',
        machines: machines('m1', 'm2'),
        units: ['web@1', 'web@2', 'web@3'].map((n) => job(`${n}.service`, { conflicts: ['web@*.service'] })),
        expect: { 'web@1.service': 'm1', 'web@2.service': 'm2' },
        unplaceable: { 'web@3.service': 'no machine can run it: Conflicts web@*.service excludes m1, m2' },
      },
      {
        title: 'names the holders when their pattern excludes the unit',
        machines: machines('m1', 'm2'),
        units: [job('x1', { conflicts: ['zdb'] }), job('x2', { conflicts: ['zdb'] }), job('zdb')],
        expect: { x1: 'm1', x2: 'm2' },
        unplaceable: { zdb: 'no machine can run it: Conflicts zdb of x1, x2 excludes m1, m2' },
      },
      {
        title: 'places the first units by name when they compete, deterministically',
        machines: m3,
        units: ['e', 'd', 'c', 'b', 'a'].map((n) => job(`${n}.service`, { conflicts: ['*.service'] })),
        expect: { 'a.service': 'm1', 'b.service': 'm2', 'c.service': 'm3' },
        unplaceable: {
          'd.service': 'no machine can run it: Conflicts *.service excludes m1, m2, m3',
          'e.service': 'no machine can run it: Conflicts *.service excludes m1, m2, m3',
        },
      },
      {
        title: 'keeps a unit off machines running a global unit it conflicts with',
        machines: [machine('m1', { edge: 'yes' }), machine('m2')],
        units: [
          globalUnit('proxy', { metadata: { edge: 'yes' } }),
          job('a'),
          job('b', { conflicts: ['proxy'] }),
        ],
        // m1 runs proxy (load 1); a goes to m2; b cannot go to m1.
        expect: { a: 'm2', b: 'm2' },
      },
      {
        title: 'does not let a global unit with desired state inactive block anything',
        machines: machines('m1'),
        units: [globalUnit('proxy', { state: 'inactive', conflicts: ['b'] }), job('b')],
        expect: { b: 'm1' },
      },
      {
        title: 'keeps the first by name of two scheduled units that now conflict',
        machines: machines('m1', 'm2'),
        units: [job('a'), job('b', { conflicts: ['a'] })],
        schedule: { a: 'm1', b: 'm1' },
        expect: { a: 'm1', b: 'm2' },
        changes: ['-b@m1', '+b@m2'],
      },
      {
        title: 'counts the first of two conflicting global units by name',
        machines: machines('m1', 'm2'),
        units: [globalUnit('g1', { conflicts: ['g2'] }), globalUnit('g2'), job('f', { machineOf: ['g2'] })],
        expect: {},
        unplaceable: { f: 'no machine can run it: MachineOf g2 excludes m1, m2' },
      },
    ]);

    it('gives the reason for moving a unit away from a conflict', () => {
      const plan = planCluster(
        snapshot({
          machines: machines('m1', 'm2'),
          units: [job('a'), job('b', { conflicts: ['a'] })],
          schedule: { a: 'm1', b: 'm1' },
        }),
      );
      expect(plan.changes[0]).to.deep.equal({
        kind: 'unschedule',
        unit: 'b',
        machine: 'm1',
        reason: 'conflicts with a on m1 (Conflicts a)',
      });
    });
  });

  describe('Replaces', () => {
    table([
      {
        title: 'pushes a replaced unit to another machine when a unit lands on its machine',
        machines: machines('m1', 'm2'),
        units: [job('old'), job('o1'), job('o2'), job('new', { replaces: ['old'] })],
        schedule: { old: 'm1', o1: 'm2', o2: 'm2' },
        // new goes to m1 (load 1 < 2) and pushes old to m2.
        expect: { new: 'm1', old: 'm2', o1: 'm2', o2: 'm2' },
        changes: ['-old@m1', '+new@m1', '+old@m2'],
      },
      {
        title: 'pushes a replaced unit only to a machine that can run it (fleet did not check)',
        machines: [machine('m1', { pool: 'x' }), machine('m2'), machine('m3', { pool: 'x' })],
        units: [
          job('old', { metadata: { pool: 'x' } }),
          job('a'),
          job('b'),
          job('c'),
          job('new', { replaces: ['old'] }),
        ],
        schedule: { old: 'm1', a: 'm2', b: 'm2', c: 'm3' },
        // Loads: m1 1, m2 2, m3 1: new goes to m1 and pushes old, which only m3 can take.
        expect: { new: 'm1', old: 'm3', a: 'm2', b: 'm2', c: 'm3' },
        changes: ['-old@m1', '+new@m1', '+old@m3'],
      },
      {
        title: 'leaves a replaced unit unscheduled when no other machine can run it',
        machines: [machine('m1', { pool: 'x' }), machine('m2')],
        units: [job('old', { metadata: { pool: 'x' } }), job('a'), job('new', { replaces: ['old'] })],
        schedule: { old: 'm1', a: 'm2' },
        expect: { new: 'm1', a: 'm2' },
        unplaceable: {
          old: 'no machine can run it: MachineMetadata pool=x excludes m2; Replaces old of new excludes m1',
        },
      },
      {
        title: 'never places a unit where a unit that replaces it runs',
        machines: machines('m1', 'm2'),
        units: [job('new', { replaces: ['old*'] }), job('a'), job('b'), job('old1')],
        schedule: { new: 'm1', a: 'm2', b: 'm2' },
        expect: { new: 'm1', a: 'm2', b: 'm2', old1: 'm2' },
      },
      {
        title: 'moves a scheduled unit off the machine of a unit that replaces it',
        machines: machines('m1', 'm2'),
        units: [job('new', { replaces: ['old'] }), job('old')],
        schedule: { new: 'm1', old: 'm1' },
        expect: { new: 'm1', old: 'm2' },
        changes: ['-old@m1', '+old@m2'],
      },
      {
        title: 'takes the followers of a pushed unit along',
        machines: machines('m1', 'm2'),
        units: [
          job('old'),
          job('side', { machineOf: ['old'] }),
          job('o1'),
          job('o2'),
          job('o3'),
          job('new', { replaces: ['old'] }),
        ],
        schedule: { old: 'm1', side: 'm1', o1: 'm2', o2: 'm2', o3: 'm2' },
        expect: { new: 'm1', old: 'm2', side: 'm2', o1: 'm2', o2: 'm2', o3: 'm2' },
        changes: ['-old@m1', '-side@m1', '+new@m1', '+old@m2', '+side@m2'],
      },
      {
        title: 'keeps the running unit of two that replace each other, and rejects the new one',
        // fleet's TestScheduleCircularReplace: a runs alone, then b comes; both may run only on m1.
        machines: [machine('m1', { pin: 'yes' }), machine('m2')],
        units: [
          job('a', { replaces: ['b'], metadata: { pin: 'yes' } }),
          job('b', { replaces: ['a'], metadata: { pin: 'yes' } }),
        ],
        schedule: { a: 'm1' },
        expect: { a: 'm1' },
        unplaceable: { b: 'Replaces cycle: a replaces b, b replaces a; kept a' },
        changes: [],
      },
      {
        title: 'keeps the running unit of a cycle even when the new one comes first by name',
        machines: [machine('m1', { pin: 'yes' }), machine('m2')],
        units: [
          job('a', { replaces: ['b'], metadata: { pin: 'yes' } }),
          job('b', { replaces: ['a'], metadata: { pin: 'yes' } }),
        ],
        schedule: { b: 'm1' },
        expect: { b: 'm1' },
        unplaceable: { a: 'Replaces cycle: a replaces b, b replaces a; kept b' },
        changes: [],
      },
      {
        title: 'keeps the first by name of two units that replace each other when neither is scheduled',
        machines: machines('m1', 'm2'),
        units: [job('b', { replaces: ['a'] }), job('a', { replaces: ['b'] }), job('c')],
        expect: { a: 'm1', c: 'm2' },
        unplaceable: { b: 'Replaces cycle: a replaces b, b replaces a; kept a' },
      },
      {
        title: 'keeps the first by name of two scheduled units that come to replace each other',
        machines: machines('m1', 'm2'),
        units: [job('a', { replaces: ['b'] }), job('b', { replaces: ['a'] })],
        schedule: { a: 'm1', b: 'm2' },
        expect: { a: 'm1' },
        unplaceable: { b: 'Replaces cycle: a replaces b, b replaces a; kept a' },
        changes: ['-b@m2'],
      },
      {
        title: 'leaves out as few units of a longer Replaces cycle as it can, the last by name',
        machines: machines('m1'),
        units: [job('a', { replaces: ['b'] }), job('b', { replaces: ['c'] }), job('c', { replaces: ['a'] })],
        // a and b are kept; a pushes b, which has nowhere else to go.
        expect: { a: 'm1' },
        unplaceable: {
          b: 'no machine can run it: Replaces b of a excludes m1',
          c: 'Replaces cycle: a replaces b, b replaces c, c replaces a; kept a, b',
        },
      },
      {
        title: 'keeps the scheduled units of a longer cycle and leaves out the new one',
        machines: machines('m1', 'm2', 'm3'),
        units: [job('a', { replaces: ['b'] }), job('b', { replaces: ['c'] }), job('c', { replaces: ['a'] })],
        schedule: { b: 'm1', c: 'm2' },
        expect: { b: 'm1', c: 'm2' },
        unplaceable: { a: 'Replaces cycle: a replaces b, b replaces c, c replaces a; kept b, c' },
        changes: [],
      },
      {
        title: 'keeps the running units of a cycle mixing Replaces and MachineOf, and leaves out the new one',
        machines: machines('m1'),
        // y would push r, which x follows, which y follows: y would push itself away.
        units: [
          job('r'),
          job('x', { machineOf: ['r'] }),
          job('y', { machineOf: ['x'], replaces: ['r'] }),
          job('z'),
        ],
        schedule: { r: 'm1', x: 'm1' },
        expect: { r: 'm1', x: 'm1', z: 'm1' },
        unplaceable: {
          y: 'MachineOf and Replaces cycle: x follows r, y replaces r, y follows x; kept r, x',
        },
      },
      {
        title: 'keeps a new follower out of a mixed cycle before the peer it follows, whatever the names',
        machines: machines('m1', 'm2'),
        // b follows a and replaces it: keeping b would need a, and together they form the cycle.
        units: [job('a'), job('b', { machineOf: ['a'], replaces: ['a'] })],
        expect: { a: 'm1' },
        unplaceable: { b: 'MachineOf and Replaces cycle: b replaces a, b follows a; kept a' },
      },
      {
        title: 'leaves out a unit whose MachineOf peer is left out of the cycle',
        machines: machines('m1', 'm2'),
        // q runs; a and q replace each other, so a is left out, and b, which follows a, with it.
        units: [
          job('a', { replaces: ['q'] }),
          job('b', { machineOf: ['a'], replaces: ['q'] }),
          job('q', { replaces: ['a'] }),
        ],
        schedule: { q: 'm1' },
        expect: { q: 'm1' },
        unplaceable: {
          a: 'MachineOf and Replaces cycle: a replaces q, b follows a, b replaces q, q replaces a; kept q',
          b: 'MachineOf and Replaces cycle: a replaces q, b follows a, b replaces q, q replaces a; kept q',
        },
      },
      {
        title: 'runs one instance of a template whose instances replace each other, the scheduled one',
        machines: machines('m1', 'm2'),
        units: ['app@1', 'app@2', 'app@3'].map((n) => job(n, { replaces: ['app@*'] })),
        schedule: { 'app@2': 'm2' },
        expect: { 'app@2': 'm2' },
        unplaceable: {
          'app@1': /^Replaces cycle: app@1 replaces app@2, .*; kept app@2$/,
          'app@3': /^Replaces cycle: app@1 replaces app@2, .*; kept app@2$/,
        },
      },
      {
        title: 'ignores a Replaces cycle that only runs through inactive units',
        machines: machines('m1', 'm2'),
        units: [job('a', { replaces: ['b'] }), job('b', { replaces: ['a'], state: 'inactive' })],
        expect: { a: 'm1' },
      },
      {
        title: 'never pushes a global unit',
        machines: machines('m1'),
        units: [globalUnit('g'), job('new', { replaces: ['g'] })],
        expect: { new: 'm1' },
      },
    ]);

    it('places a unit back on the machine it ran on last while that machine can run it', () => {
      const units = [job('a'), job('b'), job('c'), job('d')];
      const schedule = new Map([
        ['b', 'm2'],
        ['d', 'm1'],
      ]);
      const previous = new Map([
        ['a', 'm1'],
        ['c', 'm3'],
      ]);
      const plan = planCluster({ machines: m3, units, schedule, previous });
      expect(compact(plan)).to.deep.equal(['+a@m1', '+c@m3']);
      expect(plan.changes[0]?.reason).to.equal(
        'desired state launched, not scheduled: back on the machine it ran on last',
      );
      // Without the memory, least-loaded moves both.
      expect(compact(planCluster({ machines: m3, units, schedule }))).to.deep.equal(['+a@m3', '+c@m1']);
      // A machine that cannot run it any more, or that went away, is passed over.
      const excluded = planCluster({
        machines: m3,
        units: [job('a', { conflicts: ['d'] }), job('b'), job('c'), job('d')],
        schedule,
        previous: new Map([
          ['a', 'm1'],
          ['c', 'm9'],
        ]),
      });
      expect(compact(excluded)).to.deep.equal(['+a@m3', '+c@m1']);
    });

    it('gives the reason for a push', () => {
      const plan = planCluster(
        snapshot({
          machines: machines('m1', 'm2'),
          units: [job('old'), job('o'), job('o2'), job('new', { replaces: ['ol?'] })],
          schedule: { old: 'm1', o: 'm2', o2: 'm2' },
        }),
      );
      expect(plan.changes[0]).to.deep.equal({
        kind: 'unschedule',
        unit: 'old',
        machine: 'm1',
        reason: 'replaced by new on m1 (Replaces ol?)',
      });
    });
  });

  describe('changes to the cluster', () => {
    table([
      {
        title: 'moves the units of a vanished machine in the same pass and leaves the rest',
        machines: machines('m1', 'm2'),
        units: [job('a'), job('b'), job('c'), job('d')],
        schedule: { a: 'm1', b: 'm2', c: 'm3', d: 'm3' },
        expect: { a: 'm1', b: 'm2', c: 'm1', d: 'm2' },
        changes: ['-c@m3', '-d@m3', '+c@m1', '+d@m2'],
      },
      {
        title: 'unschedules a unit whose desired state became inactive',
        machines: machines('m1'),
        units: [job('a', { state: 'inactive' }), job('b')],
        schedule: { a: 'm1', b: 'm1' },
        expect: { b: 'm1' },
        changes: ['-a@m1'],
      },
      {
        title: 'unschedules units that no longer exist',
        machines: machines('m1'),
        units: [job('b')],
        schedule: { gone: 'm1', b: 'm1' },
        expect: { b: 'm1' },
        changes: ['-gone@m1'],
      },
      {
        title: 'moves nothing in an unbalanced cluster (minimal churn)',
        machines: m3,
        units: [job('a'), job('b'), job('c'), job('d'), job('e')],
        schedule: { a: 'm1', b: 'm1', c: 'm1', d: 'm1' },
        expect: { a: 'm1', b: 'm1', c: 'm1', d: 'm1', e: 'm2' },
        changes: ['+e@m2'],
      },
      {
        title: 'keeps a unit scheduled with the short form of its MachineID',
        machines: [machine('0123456789abcdef')],
        units: [job('p', { machineId: '01234567' })],
        schedule: { p: '0123456789abcdef' },
        expect: { p: '0123456789abcdef' },
        changes: [],
      },
      {
        title: 'changes nothing the second time',
        machines: m3,
        units: [job('a'), job('b', { machineOf: ['a'] }), job('c', { conflicts: ['a'] })],
        schedule: { a: 'm1', b: 'm1', c: 'm2' },
        expect: { a: 'm1', b: 'm1', c: 'm2' },
        changes: [],
      },
    ]);

    it('explains every change', () => {
      const plan = planCluster(
        snapshot({
          machines: machines('m1', 'm2'),
          units: [job('a'), job('b', { state: 'loaded' }), job('c', { state: 'inactive' })],
          schedule: { a: 'm9', c: 'm1' },
        }),
      );
      expect(plan.changes).to.deep.equal([
        { kind: 'unschedule', unit: 'a', machine: 'm9', reason: 'machine m9 went away' },
        { kind: 'unschedule', unit: 'c', machine: 'm1', reason: 'desired state inactive' },
        {
          kind: 'schedule',
          unit: 'a',
          machine: 'm1',
          hash: 'hash-of-a',
          desiredState: 'launched',
          reason: 'moved from m9: least-loaded eligible machine (load 0)',
        },
        {
          kind: 'schedule',
          unit: 'b',
          machine: 'm2',
          hash: 'hash-of-b',
          desiredState: 'loaded',
          reason: 'desired state loaded, not scheduled: least-loaded eligible machine (load 0)',
        },
      ]);
    });
  });

  describe('combinations', () => {
    const zoned = [machine('m1', { zone: 'a' }), machine('m2', { zone: 'a' }), machine('m3', { zone: 'b' })];
    table([
      {
        title: 'MachineMetadata with Conflicts: spreads within the matching machines',
        machines: zoned,
        units: ['w1', 'w2', 'w3'].map((n) => job(n, { metadata: { zone: 'a' }, conflicts: ['w*'] })),
        expect: { w1: 'm1', w2: 'm2' },
        unplaceable: {
          w3: 'no machine can run it: MachineMetadata zone=a excludes m3; Conflicts w* excludes m1, m2',
        },
      },
      {
        title: 'MachineOf with Conflicts: a follower that conflicts at its peer machine stays unscheduled',
        machines: zoned,
        units: [job('p'), job('q'), job('f', { machineOf: ['p'], conflicts: ['q'] })],
        schedule: { p: 'm1', q: 'm1' },
        expect: { p: 'm1', q: 'm1' },
        unplaceable: { f: 'no machine can run it: MachineOf p excludes m2, m3; Conflicts q excludes m1' },
      },
      {
        title: 'MachineOf with MachineMetadata: the follower must accept the peer machine',
        machines: zoned,
        units: [job('p'), job('f', { machineOf: ['p'], metadata: { zone: 'b' } })],
        expect: { p: 'm1' },
        unplaceable: {
          f: 'no machine can run it: MachineMetadata zone=b excludes m1, m2; MachineOf p excludes m3',
        },
      },
      {
        title: 'MachineOf with Replaces: a follower pushes the units it replaces off its peer machine',
        machines: zoned,
        units: [job('p'), job('old'), job('f', { machineOf: ['p'], replaces: ['old'] })],
        schedule: { p: 'm1', old: 'm1' },
        expect: { p: 'm1', f: 'm1', old: 'm2' },
        changes: ['-old@m1', '+f@m1', '+old@m2'],
      },
      {
        title: 'Global with MachineMetadata and Conflicts: counted only where both allow',
        machines: zoned,
        units: [
          globalUnit('g', { metadata: { zone: 'a' }, conflicts: ['x'] }),
          job('x'),
          job('f', { machineOf: ['g'] }),
        ],
        schedule: { x: 'm1' },
        // g runs on m2 only (m1 has x, m3 is zone b), so f must go to m2.
        expect: { x: 'm1', f: 'm2' },
      },
      {
        title: 'MachineID with Conflicts: the named machine must be free of conflicts',
        machines: zoned,
        units: [job('a'), job('p', { machineId: 'm1', conflicts: ['a'] })],
        schedule: { a: 'm1' },
        expect: { a: 'm1' },
        unplaceable: { p: 'no machine can run it: MachineID m1 excludes m2, m3; Conflicts a excludes m1' },
      },
    ]);
  });

  describe('determinism', () => {
    it('plans the same whatever the order of the input', () => {
      const units = [
        job('a'),
        job('b', { conflicts: ['a'] }),
        job('c', { machineOf: ['a'] }),
        job('d', { metadata: { zone: 'x' } }),
        globalUnit('g'),
        job('r', { replaces: ['a'] }),
      ];
      const ms = [machine('m1', { zone: 'x' }), machine('m2'), machine('m3', { zone: 'x' })];
      const base = planCluster(snapshot({ machines: ms, units, schedule: { a: 'm2', b: 'm9' } }));
      const shuffled = planCluster({
        machines: [...ms].reverse(),
        units: [...units].reverse(),
        schedule: new Map([
          ['b', 'm9'],
          ['a', 'm2'],
        ]),
      });
      expect(shuffled).to.deep.equal(base);
    });

    it('ignores repeated unit names and machine IDs after the first', () => {
      const plan = planCluster(
        snapshot({
          machines: [machine('m1'), machine('m1', { zone: 'x' })],
          units: [job('a'), job('a', { metadata: { zone: 'x' } })],
        }),
      );
      expect(compact(plan)).to.deep.equal(['+a@m1']);
    });
  });
});
