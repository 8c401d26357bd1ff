import { expect } from 'chai';
import { describe, it } from 'mocha';
import { isTruthyValue, parseSystemdBoolean } from '../../unit/booleans.js';

describe('unit/booleans', () => {
  describe('parseSystemdBoolean', () => {
    const cases: readonly [string, boolean | undefined][] = [
      ['1', true],
      ['yes', true],
      ['y', true],
      ['true', true],
      ['t', true],
      ['on', true],
      ['YES', true],
      ['True', true],
      ['On', true],
      ['0', false],
      ['no', false],
      ['n', false],
      ['false', false],
      ['f', false],
      ['off', false],
      ['OFF', false],
      ['N', false],
      ['', undefined],
      ['2', undefined],
      ['enabled', undefined],
      [' yes', undefined],
      ['yes ', undefined],
    ];
    for (const [input, expected] of cases) {
      it(`reads ${JSON.stringify(input)} as ${String(expected)}`, () => {
        expect(parseSystemdBoolean(input)).to.equal(expected);
      });
    }
  });

  describe('isTruthyValue', () => {
    const cases: readonly [string, boolean][] = [
      ['true', true],
      ['yes', true],
      ['1', true],
      ['on', true],
      ['t', true],
      ['TRUE', true],
      ['Yes', true],
      ['ON', true],
      ['T', true],
      ['y', false],
      ['false', false],
      ['0', false],
      ['', false],
      ['maybe', false],
      ['true ', false],
    ];
    for (const [input, expected] of cases) {
      it(`treats ${JSON.stringify(input)} as ${expected ? 'truthy' : 'not truthy'}`, () => {
        expect(isTruthyValue(input)).to.equal(expected);
      });
    }

    it('differs from systemd on "y", which only systemd takes for true', () => {
      expect(parseSystemdBoolean('y')).to.equal(true);
      expect(isTruthyValue('y')).to.equal(false);
    });

    it('lower-cases only ASCII, so the dotted capital I is not an i', () => {
      expect(parseSystemdBoolean('\u0130')).to.equal(undefined);
    });
  });
});
