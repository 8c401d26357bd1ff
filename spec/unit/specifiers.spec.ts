import { expect } from 'chai';
import { describe, it } from 'mocha';
import { expandSpecifiers } from '../../unit/specifiers.js';

describe('unit/specifiers', () => {
  describe('expandSpecifiers', () => {
    const cases: readonly { title: string; value: string; unit: string; expected: string }[] = [
      { title: '%n to the full name', value: '%n', unit: 'foo@bar.service', expected: 'foo@bar.service' },
      { title: '%N to the name without suffix', value: '%N', unit: 'foo@bar.service', expected: 'foo@bar' },
      { title: '%p to the prefix', value: '%p', unit: 'foo@bar.service', expected: 'foo' },
      { title: '%i to the instance', value: '%i', unit: 'foo@bar.service', expected: 'bar' },
      {
        title: 'a metadata value with the instance (fleet functional test)',
        value: 'hostname=%i',
        unit: 'metadata@smoke2.service',
        expected: 'hostname=smoke2',
      },
      {
        title: 'a MachineOf peer from the prefix',
        value: '%p.socket',
        unit: 'web.service',
        expected: 'web.socket',
      },
      {
        title: 'an instance with more @ signs',
        value: '%i',
        unit: 'foo@bar@baz.service',
        expected: 'bar@baz',
      },
      { title: '%i to nothing for a plain unit', value: 'x%iy', unit: 'web.service', expected: 'xy' },
      { title: '%i to nothing for a template', value: 'x%iy', unit: 'web@.service', expected: 'xy' },
      {
        title: 'several specifiers in one value',
        value: '%p-%i/%N/%n',
        unit: 'a@b.timer',
        expected: 'a-b/a@b/a@b.timer',
      },
      { title: '%% to a literal %', value: '100%%', unit: 'a@b.service', expected: '100%' },
      { title: '%%i to a literal %i', value: '%%i', unit: 'a@b.service', expected: '%i' },
      { title: '%%%i to % and the instance', value: '%%%i', unit: 'a@b.service', expected: '%b' },
      {
        title: 'unknown specifiers unchanged',
        value: '%H %m %I %x',
        unit: 'a@b.service',
        expected: '%H %m %I %x',
      },
      { title: 'a trailing % unchanged', value: 'abc%', unit: 'a@b.service', expected: 'abc%' },
      {
        title: 'no unescaping of escaped names',
        value: '%i',
        unit: 'a@x\\x2dy.service',
        expected: 'x\\x2dy',
      },
      { title: 'nothing for a name without a dot', value: '%n-%i', unit: 'foo@bar', expected: '%n-%i' },
      {
        title: 'a value without specifiers unchanged',
        value: 'region=us-west',
        unit: 'a.service',
        expected: 'region=us-west',
      },
    ];
    for (const { title, value, unit, expected } of cases) {
      it(`expands ${title}`, () => {
        expect(expandSpecifiers(value, unit)).to.equal(expected);
      });
    }
  });
});
