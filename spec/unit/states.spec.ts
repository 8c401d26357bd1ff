import { expect } from 'chai';
import { describe, it } from 'mocha';
import { isFleetError } from '../../lib/errors.js';
import {
  deriveCurrentState,
  invalidDesiredStateMessage,
  isSystemdActive,
  parseActiveState,
  parseDesiredState,
  parseDesiredStateOrThrow,
  parseLoadState,
  planCommand,
  transitionPath,
  type CommandPlan,
  type CurrentState,
  type CurrentStateEvidence,
  type DesiredState,
  type UnitCommand,
  type UnitPresence,
} from '../../unit/states.js';

describe('unit/states', () => {
  describe('parseDesiredState', () => {
    const cases: readonly [string, DesiredState | undefined][] = [
      ['inactive', 'inactive'],
      ['loaded', 'loaded'],
      ['launched', 'launched'],
      ['Launched', undefined],
      [' loaded', undefined],
      ['', undefined],
      ['running', undefined],
      ['none', undefined],
    ];
    for (const [input, expected] of cases) {
      it(`reads ${JSON.stringify(input)} as ${String(expected)}`, () => {
        expect(parseDesiredState(input)).to.equal(expected);
      });
    }

    it("words the error as fleet's ParseJobState does, with Go quoting", () => {
      expect(invalidDesiredStateMessage('foo')).to.equal('invalid value "foo" for JobState');
      expect(invalidDesiredStateMessage('a"b')).to.equal('invalid value "a\\"b" for JobState');
    });

    it('throws a STATE_INVALID FleetError for a bad word', () => {
      expect(() => parseDesiredStateOrThrow('started'))
        .to.throw('invalid value "started" for JobState')
        .that.satisfies((err: unknown) => isFleetError(err, 'STATE_INVALID'));
    });
  });

  describe('transitionPath', () => {
    const cases: readonly [UnitPresence, UnitPresence, UnitPresence[]][] = [
      ['inactive', 'launched', ['loaded', 'launched']],
      ['none', 'launched', ['inactive', 'loaded', 'launched']],
      ['launched', 'none', ['loaded', 'inactive', 'none']],
      ['loaded', 'none', ['inactive', 'none']],
      ['loaded', 'launched', ['launched']],
      ['launched', 'inactive', ['loaded', 'inactive']],
      ['loaded', 'loaded', []],
    ];
    for (const [from, to, path] of cases) {
      it(`moves from ${from} to ${to} through [${path.join(', ')}]`, () => {
        expect(transitionPath(from, to)).to.deep.equal(path);
      });
    }
  });

  describe('planCommand', () => {
    // Every command from every state: states.md's table plus fleetctl's skips.
    type Expected = { kind: 'move'; path: UnitPresence[] } | { kind: 'noop' } | { kind: 'invalid' };
    const cases: readonly [UnitCommand, UnitPresence, Expected][] = [
      ['submit', 'none', { kind: 'move', path: ['inactive'] }],
      ['submit', 'inactive', { kind: 'noop' }],
      ['submit', 'loaded', { kind: 'noop' }],
      ['submit', 'launched', { kind: 'noop' }],
      ['load', 'none', { kind: 'move', path: ['inactive', 'loaded'] }],
      ['load', 'inactive', { kind: 'move', path: ['loaded'] }],
      ['load', 'loaded', { kind: 'noop' }],
      ['load', 'launched', { kind: 'invalid' }],
      ['start', 'none', { kind: 'move', path: ['inactive', 'loaded', 'launched'] }],
      ['start', 'inactive', { kind: 'move', path: ['loaded', 'launched'] }],
      ['start', 'loaded', { kind: 'move', path: ['launched'] }],
      ['start', 'launched', { kind: 'noop' }],
      ['stop', 'none', { kind: 'invalid' }],
      ['stop', 'inactive', { kind: 'invalid' }],
      ['stop', 'loaded', { kind: 'noop' }],
      ['stop', 'launched', { kind: 'move', path: ['loaded'] }],
      ['unload', 'none', { kind: 'invalid' }],
      ['unload', 'inactive', { kind: 'noop' }],
      ['unload', 'loaded', { kind: 'move', path: ['inactive'] }],
      ['unload', 'launched', { kind: 'move', path: ['loaded', 'inactive'] }],
      ['destroy', 'none', { kind: 'noop' }],
      ['destroy', 'inactive', { kind: 'move', path: ['none'] }],
      ['destroy', 'loaded', { kind: 'move', path: ['inactive', 'none'] }],
      ['destroy', 'launched', { kind: 'move', path: ['loaded', 'inactive', 'none'] }],
    ];
    for (const [command, from, expected] of cases) {
      const shown =
        expected.kind === 'move' ? `moves through [${expected.path.join(', ')}]` : `is ${expected.kind}`;
      it(`${command} on a ${from} unit ${shown}`, () => {
        const plan: CommandPlan = planCommand(command, from);
        expect(plan.kind).to.equal(expected.kind);
        expect(plan.command).to.equal(command);
        expect(plan.reason).to.be.a('string').that.is.not.empty;
        if (plan.kind === 'move' && expected.kind === 'move') {
          expect(plan.path).to.deep.equal(expected.path);
          expect(plan.target).to.equal(expected.path[expected.path.length - 1]);
        }
      });
    }

    it('explains why stop on an inactive unit is invalid', () => {
      expect(planCommand('stop', 'inactive').reason).to.equal(
        'cannot stop a unit in state inactive; valid from launched',
      );
    });
  });

  describe('deriveCurrentState', () => {
    const cases: readonly { title: string; evidence: CurrentStateEvidence; state: CurrentState }[] = [
      {
        title: 'an unscheduled unit is inactive',
        evidence: { scheduledMachine: undefined, reports: [] },
        state: 'inactive',
      },
      {
        title: 'an unscheduled unit is inactive even with a stale report',
        evidence: { scheduledMachine: undefined, reports: [{ machine: 'm1', launched: true }] },
        state: 'inactive',
      },
      {
        title: 'a scheduled unit without a report is inactive',
        evidence: { scheduledMachine: 'm1', reports: [] },
        state: 'inactive',
      },
      {
        title: 'a report from another machine does not count',
        evidence: { scheduledMachine: 'm1', reports: [{ machine: 'm2', launched: true }] },
        state: 'inactive',
      },
      {
        title: 'a report from the scheduled machine makes it loaded',
        evidence: { scheduledMachine: 'm1', reports: [{ machine: 'm1', launched: false }] },
        state: 'loaded',
      },
      {
        title: 'a launched report from the scheduled machine makes it launched',
        evidence: {
          scheduledMachine: 'm1',
          reports: [
            { machine: 'm2', launched: false },
            { machine: 'm1', launched: true },
          ],
        },
        state: 'launched',
      },
    ];
    for (const { title, evidence, state } of cases) {
      it(`says ${title}`, () => {
        expect(deriveCurrentState(evidence)).to.equal(state);
      });
    }
  });

  describe('systemd states', () => {
    it('reads every known LoadState and rejects others', () => {
      for (const s of ['stub', 'loaded', 'not-found', 'bad-setting', 'error', 'merged', 'masked']) {
        expect(parseLoadState(s), s).to.equal(s);
      }
      expect(parseLoadState('Loaded')).to.equal(undefined);
    });

    it('reads every known ActiveState and rejects others', () => {
      const all = [
        'active',
        'reloading',
        'inactive',
        'failed',
        'activating',
        'deactivating',
        'maintenance',
        'refreshing',
      ];
      for (const s of all) expect(parseActiveState(s), s).to.equal(s);
      expect(parseActiveState('running')).to.equal(undefined);
    });

    const activity: readonly [string, string, boolean][] = [
      ['loaded', 'active', true],
      ['loaded', 'activating', false],
      ['not-found', 'active', false],
      ['loaded', 'failed', false],
    ];
    for (const [loadState, activeState, active] of activity) {
      it(`treats ${loadState}/${activeState} as ${active ? 'active' : 'not active'}`, () => {
        expect(isSystemdActive({ loadState, activeState })).to.equal(active);
      });
    }
  });
});
