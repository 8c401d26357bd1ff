import { expect } from 'chai';
import { describe, it } from 'mocha';

import { formatProblem } from '../../unit/problems.js';
import { serializeUnitFile, shortHash, unitFileFromOptions, unitHash } from '../../unit/serialize.js';
import { parseUnitFile, type UnitFile, type UnitOption } from '../../unit/unit-file.js';
import { Random } from '../helpers/random.js';

function parse(text: string): UnitFile {
  const r = parseUnitFile(text, 'test.service');
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('; '));
  return r.value;
}

function strip(options: readonly UnitOption[]): [string, string, string][] {
  return options.map((o) => [o.section, o.name, o.value]);
}

describe('unit/serialize', () => {
  describe('serializeUnitFile', () => {
    const cases: { title: string; text: string; want: string }[] = [
      { title: 'an empty unit as the empty string', text: '', want: '' },
      { title: 'a section without options as nothing', text: '[Unit]\n', want: '' },
      {
        title: 'one section',
        text: '[Service]\nExecStart=/bin/sleep 100\n',
        want: '[Service]\nExecStart=/bin/sleep 100\n',
      },
      {
        title: 'sections separated by one blank line and none after the last',
        text: '[Unit]\nDescription=d\n\n\n[Service]\nExecStart=/x\n\n',
        want: '[Unit]\nDescription=d\n\n[Service]\nExecStart=/x\n',
      },
      {
        title: 'options of a repeated section grouped under its first occurrence',
        text: '[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n',
        want: '[Unit]\nA=1\nC=3\n\n[Service]\nB=2\n',
      },
      { title: 'trimmed names and values', text: '[Unit]\n  A  =  b c  \n', want: '[Unit]\nA=b c\n' },
      { title: 'comments dropped', text: '# x\n[Unit]\n; y\nA=1\n', want: '[Unit]\nA=1\n' },
      {
        title: 'a continued value on one line',
        text: '[Service]\nExecStart=/bin/echo a \\\n  b\n',
        want: '[Service]\nExecStart=/bin/echo a    b\n',
      },
      {
        title: 'repeated keys in order',
        text: '[Service]\nA=1\nA=\nA=2\n',
        want: '[Service]\nA=1\nA=\nA=2\n',
      },
      { title: 'CRLF input as LF output', text: '[Unit]\r\nA=1\r\n', want: '[Unit]\nA=1\n' },
    ];
    for (const c of cases) {
      it(`writes ${c.title}`, () => {
        expect(serializeUnitFile(parse(c.text))).to.equal(c.want);
      });
    }

    it('accepts a bare option list', () => {
      expect(serializeUnitFile([{ section: 'S', name: 'N', value: 'V', line: 0 }])).to.equal('[S]\nN=V\n');
    });
  });

  describe('unitHash', () => {
    const vectors: { title: string; text: string; hash: string }[] = [
      {
        title: "fleet's ExecStart vector",
        text: '[Service]\nExecStart=/bin/sleep 100\n',
        hash: '1c6fb6f3684bafb0c173d8b8b957ceff031180c1',
      },
      { title: "fleet's empty-unit vector", text: '', hash: 'da39a3ee5e6b4b0d3255bfef95601890afd80709' },
      {
        title: "fleet's Description vector",
        text: '[Unit]\nDescription=some description\n',
        hash: 'a0f275d46bc6ee0eca06be7c339913c07d99c0c7',
      },
    ];
    for (const v of vectors) {
      it(`matches ${v.title}`, () => {
        expect(unitHash(parse(v.text))).to.equal(v.hash);
      });
    }

    it('ignores formatting that the canonical form drops', () => {
      const a = parse('[Unit]\nDescription=x\n[Service]\nExecStart=/y\n');
      const b = parse('# comment\r\n[Unit]\r\n  Description = x \r\n\r\n\r\n[Service]\r\nExecStart=/y');
      expect(unitHash(a)).to.equal(unitHash(b));
    });

    it('differs when a value differs', () => {
      expect(unitHash(parse('[Unit]\nA=1\n'))).to.not.equal(unitHash(parse('[Unit]\nA=2\n')));
    });

    it('differs when the order of repeated keys differs', () => {
      expect(unitHash(parse('[Service]\nA=1\nA=2\n'))).to.not.equal(unitHash(parse('[Service]\nA=2\nA=1\n')));
    });

    it('is 40 lowercase hex characters with a 7-character short form', () => {
      const h = unitHash(parse('[Unit]\nDescription=some description\n'));
      expect(h).to.match(/^[0-9a-f]{40}$/);
      expect(shortHash(h)).to.equal('a0f275d');
    });
  });

  describe('unitFileFromOptions', () => {
    it('builds a unit from API options in canonical order', () => {
      const r = unitFileFromOptions(
        [
          { section: 'Service', name: 'ExecStart', value: '/bin/sleep 200' },
          { section: 'Unit', name: 'Description', value: 'd' },
          { section: 'Service', name: 'Restart', value: 'always' },
        ],
        'api.service',
      );
      expect(r.ok && strip(r.value.options)).to.deep.equal([
        ['Service', 'ExecStart', '/bin/sleep 200'],
        ['Service', 'Restart', 'always'],
        ['Unit', 'Description', 'd'],
      ]);
    });

    const bad: { title: string; option: { section: string; name: string; value: string } }[] = [
      {
        title: 'a newline in a value',
        option: { section: 'Service', name: 'ExecStart', value: '/a\n[Unit]' },
      },
      { title: 'an "=" in a name', option: { section: 'Service', name: 'A=B', value: 'c' } },
      { title: 'a name that starts a comment', option: { section: 'Service', name: '#A', value: 'c' } },
      { title: 'padding around a value', option: { section: 'Service', name: 'A', value: ' c ' } },
      { title: 'a value ending in a backslash', option: { section: 'Service', name: 'A', value: 'c\\' } },
      { title: 'an empty section', option: { section: '', name: 'A', value: 'c' } },
      { title: 'an empty name', option: { section: 'Service', name: '', value: 'c' } },
    ];
    for (const b of bad) {
      it(`rejects ${b.title}`, () => {
        const r = unitFileFromOptions([b.option], 'api.service');
        expect(r.ok).to.equal(false);
      });
    }
  });

  describe('round trip (property)', () => {
    const sections = ['Unit', 'Service', 'X-Fleet', 'Install', 'Socket', 'X Custom'];
    const names = [
      'Description',
      'ExecStart',
      'Conflicts',
      'MachineOf',
      'WantedBy',
      'Environment',
      'A',
      'x-y_z',
    ];
    const valueAlphabet = 'abcXYZ019 =/#;"\'\\%@.*[]\tü世🚀';

    function randomFileText(rng: Random): string {
      const lines: string[] = [];
      if (rng.bool(0.2)) lines.push('# leading comment');
      const nSections = rng.int(0, 4);
      for (let s = 0; s < nSections; s++) {
        lines.push(`${rng.bool(0.2) ? '  ' : ''}[${rng.pick(sections)}]`);
        const nOptions = rng.int(0, 6);
        for (let o = 0; o < nOptions; o++) {
          if (rng.bool(0.1)) lines.push(rng.pick(['', '; c', '  # c']));
          // No piece ends in a backslash (or one before blanks): that would continue the line or
          // leave a value ending in a lone backslash, which the parser rightly rejects.
          const piece = (n: number): string =>
            rng.string(valueAlphabet, rng.int(0, n)).replace(/[\s\\]+$/, '');
          let value = piece(20);
          if (rng.bool(0.15)) value += ` \\\n${piece(10)}`;
          lines.push(`${rng.pick(names)}${rng.pick(['=', ' = ', '\t='])}${value}`);
        }
      }
      return lines.join(rng.bool(0.2) ? '\r\n' : '\n') + (rng.bool() ? '\n' : '');
    }

    it('parse -> serialize -> parse keeps every option and the hash (2,000 random files)', () => {
      const rng = new Random(20261125);
      for (let i = 0; i < 2000; i++) {
        const text = randomFileText(rng);
        const first = parseUnitFile(text, 'p.service');
        if (!first.ok)
          throw new Error(
            `seed ${rng.seed} case ${i}: ${first.problems.map(formatProblem).join('; ')}\n${text}`,
          );
        const canonical = serializeUnitFile(first.value);
        const second = parseUnitFile(canonical, 'p.service');
        if (!second.ok) throw new Error(`case ${i}: canonical form does not parse\n${canonical}`);
        const again = serializeUnitFile(second.value);
        expect(again, `case ${i}`).to.equal(canonical);
        expect(unitHash(second.value)).to.equal(unitHash(first.value));
        // Within each section, options keep their file order.
        for (const section of new Set(first.value.options.map((o) => o.section))) {
          const a = strip(first.value.options.filter((o) => o.section === section));
          const b = strip(second.value.options.filter((o) => o.section === section));
          expect(b, `case ${i} section ${section}`).to.deep.equal(a);
        }
      }
    });
  });
});
