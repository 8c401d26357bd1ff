import { expect } from 'chai';
import { describe, it } from 'mocha';

import { formatProblem } from '../../unit/problems.js';
import { parseUnit, unitFromOptions } from '../../unit/unit.js';

describe('unit/unit', () => {
  it('parses a valid unit with its hash and options', () => {
    const r = parseUnit('sleep.service', '[Service]\nExecStart=/bin/sleep 100\n');
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.value.name).to.equal('sleep.service');
    expect(r.value.hash).to.equal('1c6fb6f3684bafb0c173d8b8b957ceff031180c1');
    expect(r.value.fleet.global).to.equal(false);
  });

  it('reports a bad name, bad syntax and bad options together', () => {
    const r = parseUnit('bad%.service', 'Top=1\n[X-Fleet]\nGlobal=maybe\n', {
      file: '/etc/fleet/units/bad%.service',
    });
    expect(r.ok).to.equal(false);
    if (r.ok) return;
    expect(r.problems.map(formatProblem)).to.deep.equal([
      `/etc/fleet/units/bad%.service: invalid unit name "bad%.service": invalid character '%' in unit name`,
      '/etc/fleet/units/bad%.service line 1: Top: assignment outside of any section (add a [Section] header above it)',
    ]);
  });

  it('reports option problems once the syntax is valid', () => {
    const r = parseUnit('a.service', '[X-Fleet]\nGlobal=maybe\nMachineOf=\n');
    expect(r.ok ? [] : r.problems.map((p) => p.option)).to.deep.equal(['Global', 'MachineOf']);
  });

  it('names the file the caller gives in problems', () => {
    const r = parseUnit('a.service', '[X-Fleet]\nGlobal=maybe\n', { file: 'units/a.service' });
    expect(r.ok ? '' : formatProblem(r.problems[0]!)).to.match(/^units\/a\.service line 2:/);
  });

  it('builds a unit from API options with the same hash as its file', () => {
    const a = unitFromOptions('x.service', [
      { section: 'Service', name: 'ExecStart', value: '/bin/sleep 100' },
    ]);
    expect(a.ok && a.value.hash).to.equal('1c6fb6f3684bafb0c173d8b8b957ceff031180c1');
  });

  it('validates API options like a file', () => {
    const a = unitFromOptions('x.service', [{ section: 'X-Fleet', name: 'Global', value: 'perhaps' }]);
    expect(a.ok).to.equal(false);
  });

  it('rejects API options with an invalid name', () => {
    const a = unitFromOptions('x', [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }]);
    expect(a.ok ? '' : a.problems[0]?.message).to.match(/must contain "\."/);
  });

  it('accepts a template with specifiers left for its instances', () => {
    const r = parseUnit(
      'web@.service',
      '[Service]\nExecStart=/bin/echo %i\n[X-Fleet]\nConflicts=web@*.service\n',
    );
    expect(r.ok).to.equal(true);
  });

  it('carries deprecation warnings of a valid unit', () => {
    const r = parseUnit('a.service', '[X-Fleet]\nX-Conflicts=b.service\n');
    expect(r.ok && r.value.warnings.length).to.equal(1);
  });
});
