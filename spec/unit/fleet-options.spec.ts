import { expect } from 'chai';
import { describe, it } from 'mocha';

import {
  MAX_VALUES,
  NO_FLEET_OPTIONS,
  splitWords,
  validateFleetOptions,
  type FleetOptions,
} from '../../unit/fleet-options.js';
import { formatProblem } from '../../unit/problems.js';
import { unitProblems, validUnit } from '../helpers/unit-builders.js';

const MACHINE = '2c6d7ba3d1f44d49a19a2b1f1b3e8a51';

describe('unit/fleet-options', () => {
  describe('splitWords', () => {
    const cases: { value: string; want: string[]; unbalanced?: boolean }[] = [
      { value: 'a', want: ['a'] },
      { value: 'a b  c', want: ['a', 'b', 'c'] },
      { value: '"a" "b" "c"', want: ['a', 'b', 'c'] },
      { value: '"region=us east" disk=ssd', want: ['region=us east', 'disk=ssd'] },
      { value: '""', want: [''] },
      { value: '', want: [] },
      { value: 'a\tb', want: ['a', 'b'] },
      { value: 'x"y z"w', want: ['xy zw'] },
      { value: '"foo\\"bar"', want: ['foo\\bar'], unbalanced: true },
      { value: '"bar', want: ['bar'], unbalanced: true },
    ];
    for (const c of cases) {
      it(`splits ${JSON.stringify(c.value)}`, () => {
        const r = splitWords(c.value);
        expect(r.words).to.deep.equal(c.want);
        expect(r.unbalanced).to.equal(c.unbalanced ?? false);
      });
    }
  });

  describe('reads', () => {
    it('reads no options from a unit without [X-Fleet]', () => {
      expect(validUnit('a.service').fleet).to.deep.equal(NO_FLEET_OPTIONS);
    });

    it('reads MachineID', () => {
      expect(validUnit('a.service', [`MachineID=${MACHINE}`]).fleet.machineId).to.equal(MACHINE);
    });

    it('reads the 8-character short machine ID', () => {
      expect(validUnit('a.service', ['MachineID=2c6d7ba3']).fleet.machineId).to.equal('2c6d7ba3');
    });

    it('accepts the same MachineID on two lines', () => {
      expect(validUnit('a.service', ['MachineID=m1', 'MachineID=m1']).fleet.machineId).to.equal('m1');
    });

    it('reads the deprecated X-ConditionMachineID as MachineID, with a warning', () => {
      const u = validUnit('a.service', ['X-ConditionMachineID=m1']);
      expect(u.fleet.machineId).to.equal('m1');
      expect(u.warnings.map(formatProblem)).to.deep.equal([
        'a.service line 5: [X-Fleet] X-ConditionMachineID: is deprecated; use MachineID',
      ]);
    });

    it('reads X-ConditionMachineBootID as MachineID', () => {
      expect(validUnit('a.service', ['X-ConditionMachineBootID=m2']).fleet.machineId).to.equal('m2');
    });

    it('reads MachineOf over several lines and values, without duplicates', () => {
      const u = validUnit('a.service', [
        'MachineOf=b.service',
        'MachineOf="c.service" "d.socket"',
        'MachineOf=b.service',
      ]);
      expect(u.fleet.machineOf).to.deep.equal(['b.service', 'c.service', 'd.socket']);
    });

    it('reads MachineOf and X-ConditionMachineOf together', () => {
      const u = validUnit('a.service', ['MachineOf=b.service', 'X-ConditionMachineOf=c.service']);
      expect(u.fleet.machineOf).to.deep.equal(['b.service', 'c.service']);
      expect(u.warnings).to.have.length(1);
    });

    it('splits an unquoted MachineOf list at whitespace', () => {
      expect(validUnit('a.service', ['MachineOf=b.service c.service']).fleet.machineOf).to.deep.equal([
        'b.service',
        'c.service',
      ]);
    });

    it('reads MachineMetadata, OR within a key and AND across keys', () => {
      const u = validUnit('a.service', [
        'MachineMetadata=region=us-east',
        'MachineMetadata=region=us-west',
        'MachineMetadata=disk=ssd',
      ]);
      expect(u.fleet.machineMetadata).to.deep.equal([
        { key: 'region', values: ['us-east', 'us-west'] },
        { key: 'disk', values: ['ssd'] },
      ]);
    });

    it('reads quoted multi-pair MachineMetadata on one line', () => {
      const u = validUnit('a.service', ['MachineMetadata="region=us-east" "disk=ssd"']);
      expect(u.fleet.machineMetadata).to.deep.equal([
        { key: 'region', values: ['us-east'] },
        { key: 'disk', values: ['ssd'] },
      ]);
    });

    it('reads unquoted multi-pair MachineMetadata as both pairs (fleet ignored the line)', () => {
      const u = validUnit('a.service', ['MachineMetadata=region=us-east disk=ssd']);
      expect(u.fleet.machineMetadata).to.deep.equal([
        { key: 'region', values: ['us-east'] },
        { key: 'disk', values: ['ssd'] },
      ]);
    });

    it('reads a quoted metadata value with a space', () => {
      const u = validUnit('a.service', ['MachineMetadata="rack=row 1"']);
      expect(u.fleet.machineMetadata).to.deep.equal([{ key: 'rack', values: ['row 1'] }]);
    });

    it('reads X-ConditionMachineMetadata with MachineMetadata', () => {
      const u = validUnit('a.service', ['MachineMetadata=a=1', 'X-ConditionMachineMetadata=a=2']);
      expect(u.fleet.machineMetadata).to.deep.equal([{ key: 'a', values: ['1', '2'] }]);
    });

    it('reads Conflicts split at whitespace across lines, with X-Conflicts', () => {
      const u = validUnit('a.service', [
        'Conflicts=b.service c*.service',
        'Conflicts="d?.socket"',
        'X-Conflicts=e.service',
      ]);
      expect(u.fleet.conflicts).to.deep.equal(['b.service', 'c*.service', 'd?.socket', 'e.service']);
    });

    it('reads Conflicts with a bracket glob', () => {
      expect(validUnit('a.service', ['Conflicts=web[0-9].service']).fleet.conflicts).to.deep.equal([
        'web[0-9].service',
      ]);
    });

    it('reads Replaces', () => {
      expect(validUnit('a.service', ['Replaces=old-*.service']).fleet.replaces).to.deep.equal([
        'old-*.service',
      ]);
    });

    const booleans: [string, boolean][] = [
      ['true', true],
      ['yes', true],
      ['1', true],
      ['on', true],
      ['t', true],
      ['y', true],
      ['TRUE', true],
      ['Yes', true],
      ['false', false],
      ['no', false],
      ['0', false],
      ['off', false],
      ['f', false],
      ['n', false],
    ];
    for (const [word, want] of booleans) {
      it(`reads Global=${word} as ${want}`, () => {
        expect(validUnit('a.service', [`Global=${word}`]).fleet.global).to.equal(want);
      });
    }

    it('lets the last Global line win', () => {
      expect(validUnit('a.service', ['Global=true', 'Global=false']).fleet.global).to.equal(false);
    });

    it('allows Global with Conflicts and MachineMetadata', () => {
      const u = validUnit('a.service', ['Global=true', 'Conflicts=b*', 'MachineMetadata=role=web']);
      expect(u.fleet.global).to.equal(true);
    });

    it('allows MachineOf with Conflicts that do not match the peer', () => {
      expect(validUnit('a.service', ['MachineOf=b.service', 'Conflicts=c*']).fleet.machineOf).to.deep.equal([
        'b.service',
      ]);
    });

    it('allows Replaces with MachineOf that it does not match', () => {
      expect(validUnit('a.service', ['MachineOf=b.service', 'Replaces=c*']).fleet.replaces).to.deep.equal([
        'c*',
      ]);
    });

    it('ignores other sections', () => {
      expect(validUnit('a.service', []).fleet.global).to.equal(false);
    });
  });

  describe('specifiers', () => {
    it('expands %i in MachineMetadata for an instance', () => {
      const u = validUnit('metadata@smoke2.service', ['MachineMetadata=hostname=%i']);
      expect(u.fleet.machineMetadata).to.deep.equal([{ key: 'hostname', values: ['smoke2'] }]);
    });

    it('expands %p and %i in MachineOf for an instance', () => {
      expect(validUnit('web@3.service', ['MachineOf=%p-sidekick@%i.service']).fleet.machineOf).to.deep.equal([
        'web-sidekick@3.service',
      ]);
    });

    it('expands %n and %N in Conflicts', () => {
      expect(validUnit('db.service', ['Conflicts=%N-backup.service']).fleet.conflicts).to.deep.equal([
        'db-backup.service',
      ]);
    });

    it('keeps specifiers of a template as written', () => {
      const u = validUnit('web@.service', ['MachineOf=sidekick@%i.service', 'MachineMetadata=hostname=%i']);
      expect(u.fleet.machineOf).to.deep.equal(['sidekick@%i.service']);
      expect(u.fleet.machineMetadata).to.deep.equal([{ key: 'hostname', values: ['%i'] }]);
    });

    it('validates the words of a template that hold no specifier', () => {
      const ps = unitProblems('web@.service', ['MachineOf=not a name%i', 'Conflicts=[']);
      expect(ps.map((p) => p.option)).to.deep.equal(['MachineOf', 'MachineOf', 'Conflicts']);
    });
  });

  describe('rejects', () => {
    const cases: { title: string; lines: string[]; option: string; match: RegExp }[] = [
      {
        title: 'an unknown option',
        lines: ['MachineMetdata=a=b'],
        option: 'MachineMetdata',
        match: /unknown option/,
      },
      {
        title: 'a wrongly cased option, suggesting the right one',
        lines: ['machineid=m1'],
        option: 'machineid',
        match: /did you mean MachineID/,
      },
      {
        title: 'an empty MachineID',
        lines: ['MachineID='],
        option: 'MachineID',
        match: /exactly one machine ID/,
      },
      {
        title: 'two machine IDs on one line',
        lines: ['MachineID=m1 m2'],
        option: 'MachineID',
        match: /exactly one machine ID/,
      },
      {
        title: 'different MachineIDs on two lines',
        lines: ['MachineID=m1', 'MachineID=m2'],
        option: 'MachineID',
        match: /earlier machine ID/,
      },
      {
        title: 'a MachineID with odd characters',
        lines: ['MachineID=m/1'],
        option: 'MachineID',
        match: /invalid machine ID/,
      },
      {
        title: 'an empty MachineOf',
        lines: ['MachineOf='],
        option: 'MachineOf',
        match: /needs a unit name, got ""/,
      },
      {
        title: 'a MachineOf that is not a unit name',
        lines: ['MachineOf=nodot'],
        option: 'MachineOf',
        match: /not a unit name/,
      },
      {
        title: 'a MachineOf naming the unit itself',
        lines: ['MachineOf=a.service'],
        option: 'MachineOf',
        match: /its own MachineOf/,
      },
      {
        title: 'MachineMetadata without "="',
        lines: ['MachineMetadata=region'],
        option: 'MachineMetadata',
        match: /expected key=value/,
      },
      {
        title: 'MachineMetadata with an empty value',
        lines: ['MachineMetadata=region='],
        option: 'MachineMetadata',
        match: /expected key=value/,
      },
      {
        title: 'MachineMetadata with an empty key',
        lines: ['MachineMetadata==us'],
        option: 'MachineMetadata',
        match: /expected key=value/,
      },
      {
        title: 'MachineMetadata with two "="',
        lines: ['MachineMetadata=a=b=c'],
        option: 'MachineMetadata',
        match: /expected key=value/,
      },
      {
        title: 'an empty MachineMetadata',
        lines: ['MachineMetadata='],
        option: 'MachineMetadata',
        match: /needs key=value/,
      },
      {
        title: 'a metadata key with odd characters',
        lines: ['MachineMetadata=a/b=c'],
        option: 'MachineMetadata',
        match: /invalid metadata key/,
      },
      {
        title: 'an unbalanced quote',
        lines: ['MachineMetadata="a=b'],
        option: 'MachineMetadata',
        match: /unbalanced/,
      },
      {
        title: 'an invalid Conflicts glob',
        lines: ['Conflicts=web[.service'],
        option: 'Conflicts',
        match: /invalid glob/,
      },
      {
        title: 'an empty Conflicts',
        lines: ['Conflicts='],
        option: 'Conflicts',
        match: /needs a unit name or glob/,
      },
      {
        title: 'an invalid Replaces glob',
        lines: ['Replaces=a['],
        option: 'Replaces',
        match: /invalid glob/,
      },
      {
        title: 'a Global that is not a boolean',
        lines: ['Global=banana'],
        option: 'Global',
        match: /expected a boolean/,
      },
      { title: 'an empty Global', lines: ['Global='], option: 'Global', match: /expected a boolean/ },
      {
        title: 'Global with MachineID',
        lines: ['Global=true', 'MachineID=m1'],
        option: 'MachineID',
        match: /MachineID cannot be used with Global/,
      },
      {
        title: 'Global with MachineOf',
        lines: ['Global=true', 'MachineOf=b.service'],
        option: 'Global',
        match: /Global cannot be used with MachineOf/,
      },
      {
        title: 'Global with Replaces',
        lines: ['Global=true', 'Replaces=b.service'],
        option: 'Global',
        match: /Global cannot be used with Replaces/,
      },
      {
        title: 'Replaces with Conflicts',
        lines: ['Replaces=b.service', 'Conflicts=c.service'],
        option: 'Conflicts',
        match: /Conflicts cannot be used with Replaces/,
      },
      {
        title: 'MachineID with MachineOf',
        lines: ['MachineID=m1', 'MachineOf=b.service'],
        option: 'MachineID',
        match: /MachineID cannot be used with MachineOf/,
      },
      {
        title: 'MachineID with Conflicts',
        lines: ['MachineID=m1', 'Conflicts=b.service'],
        option: 'MachineID',
        match: /MachineID cannot be used with Conflicts/,
      },
      {
        title: 'MachineID with Replaces',
        lines: ['MachineID=m1', 'Replaces=b.service'],
        option: 'MachineID',
        match: /MachineID cannot be used with Replaces/,
      },
      {
        title: 'a peer matched by a conflict',
        lines: ['MachineOf=db.service', 'Conflicts=d*'],
        option: 'MachineOf',
        match: /peer "db.service" matches conflict "d\*"/,
      },
      {
        title: 'a peer matched by a replace',
        lines: ['MachineOf=db.service', 'Replaces=db.*'],
        option: 'MachineOf',
        match: /peer "db.service" matches replace "db.\*"/,
      },
    ];
    for (const c of cases) {
      it(`rejects ${c.title}`, () => {
        const ps = unitProblems('a.service', c.lines);
        const hit = ps.find((p) => c.match.test(p.message));
        expect(hit, ps.map(formatProblem).join('\n')).to.not.equal(undefined);
        expect(hit?.option).to.equal(c.option);
        expect(hit?.section).to.equal('X-Fleet');
        expect(hit?.file).to.equal('a.service');
      });
    }

    it('rejects more Conflicts patterns than the limit, once', () => {
      const many = Array.from({ length: MAX_VALUES.conflicts + 5 }, (_, i) => `c${i}.service`).join(' ');
      const ps = unitProblems('a.service', [`Conflicts=${many}`, 'Conflicts=extra.service']);
      expect(ps.map((p) => p.message)).to.deep.equal([`too many values (at most ${MAX_VALUES.conflicts})`]);
    });

    it('rejects more MachineOf peers than the limit', () => {
      const lines = Array.from({ length: MAX_VALUES.machineOf + 1 }, (_, i) => `MachineOf=p${i}.service`);
      expect(unitProblems('a.service', lines).map((p) => p.option)).to.deep.equal(['MachineOf']);
    });

    it('rejects more MachineMetadata values than the limit', () => {
      const many = Array.from({ length: MAX_VALUES.machineMetadata + 1 }, (_, i) => `k${i % 7}=v${i}`).join(
        ' ',
      );
      expect(unitProblems('a.service', [`MachineMetadata=${many}`])[0]?.message).to.match(/too many values/);
    });

    it('accepts repeated values beyond the limit, which count once', () => {
      const lines = Array.from({ length: MAX_VALUES.machineOf + 10 }, () => 'MachineOf=p.service');
      expect(validUnit('a.service', lines).fleet.machineOf).to.deep.equal(['p.service']);
    });

    it('reports every problem of the section at once, each with its line', () => {
      const ps = unitProblems('a.service', ['Global=maybe', 'MachineMetadata=x', 'Conflicts=[', 'Bogus=1']);
      expect(ps.map((p) => [p.line, p.option])).to.deep.equal([
        [5, 'Global'],
        [6, 'MachineMetadata'],
        [7, 'Conflicts'],
        [8, 'Bogus'],
      ]);
    });

    it('formats a problem with file, line, section, option and why', () => {
      const ps = unitProblems('web.service', ['MachineOf=']);
      expect(formatProblem(ps[0]!)).to.equal(
        'web.service line 5: [X-Fleet] MachineOf: needs a unit name, got ""',
      );
    });
  });

  describe('validateFleetOptions', () => {
    const base: FleetOptions = NO_FLEET_OPTIONS;
    it('accepts no options', () => {
      expect(validateFleetOptions(base, 'x.service')).to.deep.equal([]);
    });

    it('reports every exclusive pair at once', () => {
      const all: FleetOptions = {
        machineId: 'm1',
        machineOf: ['b.service'],
        machineMetadata: [],
        conflicts: ['c*'],
        global: true,
        replaces: ['d*'],
      };
      expect(validateFleetOptions(all, 'x.service')).to.have.length(7);
    });
  });
});
