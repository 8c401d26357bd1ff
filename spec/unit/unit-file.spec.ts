import { expect } from 'chai';
import { describe, it } from 'mocha';

import { formatProblem, type UnitProblem } from '../../unit/problems.js';
import { MAX_LINE_BYTES, optionValues, parseUnitFile, type UnitFile } from '../../unit/unit-file.js';

type Triple = [section: string, name: string, value: string];

function parse(text: string | Uint8Array): UnitFile {
  const r = parseUnitFile(text, 'test.service');
  if (!r.ok) throw new Error(`unexpected problems: ${r.problems.map(formatProblem).join('; ')}`);
  return r.value;
}

function triples(text: string | Uint8Array): Triple[] {
  return parse(text).options.map((o) => [o.section, o.name, o.value]);
}

function problems(text: string | Uint8Array): UnitProblem[] {
  const r = parseUnitFile(text, 'test.service');
  if (r.ok) throw new Error('expected problems, got a valid file');
  return [...r.problems];
}

describe('unit/unit-file: parseUnitFile', () => {
  describe('accepts', () => {
    const cases: { title: string; text: string; want: Triple[] }[] = [
      { title: 'an empty file', text: '', want: [] },
      { title: 'a file of only blank lines', text: '\n\n   \n\t\n', want: [] },
      { title: 'a file of only comments', text: '# a\n; b\n   # c\n', want: [] },
      { title: 'a section with no options', text: '[Unit]\n', want: [] },
      {
        title: 'one option',
        text: '[Service]\nExecStart=/bin/true\n',
        want: [['Service', 'ExecStart', '/bin/true']],
      },
      {
        title: 'a file without a final newline',
        text: '[Unit]\nDescription=x',
        want: [['Unit', 'Description', 'x']],
      },
      {
        title: 'several sections in order',
        text: '[Unit]\nDescription=d\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
        want: [
          ['Unit', 'Description', 'd'],
          ['Service', 'ExecStart', '/bin/true'],
          ['Install', 'WantedBy', 'multi-user.target'],
        ],
      },
      {
        title: 'repeated keys in order',
        text: '[Service]\nExecStartPre=/a\nExecStartPre=/b\nExecStartPre=\nExecStartPre=/c\n',
        want: [
          ['Service', 'ExecStartPre', '/a'],
          ['Service', 'ExecStartPre', '/b'],
          ['Service', 'ExecStartPre', ''],
          ['Service', 'ExecStartPre', '/c'],
        ],
      },
      {
        title: 'a section opened twice, keeping file order',
        text: '[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nC=3\n',
        want: [
          ['Unit', 'A', '1'],
          ['Service', 'B', '2'],
          ['Unit', 'C', '3'],
        ],
      },
      {
        title: 'whitespace around name and value',
        text: '[Unit]\n  Description  =   Foo bar  \n',
        want: [['Unit', 'Description', 'Foo bar']],
      },
      {
        title: 'tabs around name and value',
        text: '[Unit]\n\tDescription\t=\tFoo\t\n',
        want: [['Unit', 'Description', 'Foo']],
      },
      { title: 'an empty value', text: '[Service]\nEnvironment=\n', want: [['Service', 'Environment', '']] },
      {
        title: 'a value holding "="',
        text: '[Service]\nEnvironment=A=B C=D\n',
        want: [['Service', 'Environment', 'A=B C=D']],
      },
      {
        title: 'a value holding "#" and ";"',
        text: '[Service]\nExecStart=/bin/echo #x ;y\n',
        want: [['Service', 'ExecStart', '/bin/echo #x ;y']],
      },
      {
        title: 'a section header with spaces around it',
        text: '   [Unit]   \nA=1\n',
        want: [['Unit', 'A', '1']],
      },
      {
        title: 'a section name with spaces inside',
        text: '[X Custom]\nA=1\n',
        want: [['X Custom', 'A', '1']],
      },
      {
        title: 'an option name with odd characters',
        text: '[Unit]\n<<<<=bar\n',
        want: [['Unit', '<<<<', 'bar']],
      },
      {
        title: 'CRLF line endings',
        text: '[Unit]\r\nDescription=x\r\n\r\n[Service]\r\nExecStart=/y\r\n',
        want: [
          ['Unit', 'Description', 'x'],
          ['Service', 'ExecStart', '/y'],
        ],
      },
      {
        title: 'a byte-order mark at the start',
        text: '\uFEFF[Unit]\nDescription=x\n',
        want: [['Unit', 'Description', 'x']],
      },
      {
        title: 'a byte-order mark followed by a comment',
        text: '\uFEFF# c\n[Unit]\nA=1\n',
        want: [['Unit', 'A', '1']],
      },
      {
        title: 'UTF-8 text in values',
        text: '[Unit]\nDescription=Grüße, 世界 🚀\n',
        want: [['Unit', 'Description', 'Grüße, 世界 🚀']],
      },
      {
        title: 'indented comments inside a section',
        text: '[Unit]\n  # note\n\t; other\nA=1\n',
        want: [['Unit', 'A', '1']],
      },
      {
        title: 'a line continuation, the backslash becoming a space',
        text: '[Service]\nExecStart=/bin/echo a \\\nb\n',
        want: [['Service', 'ExecStart', '/bin/echo a  b']],
      },
      {
        title: "a continuation keeping the next line's leading whitespace",
        text: '[Service]\nExecStart=/bin/echo \\\n    "pi\\\n  ng"\n',
        want: [['Service', 'ExecStart', '/bin/echo      "pi   ng"']],
      },
      {
        title: 'a continuation over comment lines, which are dropped',
        text: '[Service]\nExecStart=/bin/echo a \\\n# comment\n; other\n  b\nX=1\n',
        want: [
          ['Service', 'ExecStart', '/bin/echo a    b'],
          ['Service', 'X', '1'],
        ],
      },
      {
        title: 'a continuation ended by an empty line',
        text: '[Service]\nExecStart=/bin/echo a \\\n\nX=1\n',
        want: [
          ['Service', 'ExecStart', '/bin/echo a'],
          ['Service', 'X', '1'],
        ],
      },
      {
        title: 'a continuation at the end of the file',
        text: '[Service]\nExecStart=/bin/echo a \\',
        want: [['Service', 'ExecStart', '/bin/echo a']],
      },
      {
        title: 'an escaped backslash at the end of a line as no continuation',
        text: '[Service]\nExecStart=/bin/echo a\\\\\nX=1\n',
        want: [
          ['Service', 'ExecStart', '/bin/echo a\\\\'],
          ['Service', 'X', '1'],
        ],
      },
      {
        title: 'three backslashes at the end as a continuation',
        text: '[Service]\nA=x\\\\\\\ny\n',
        want: [['Service', 'A', 'x\\\\ y']],
      },
      {
        title: 'a continued option name',
        text: '[Unit]\nDescr\\\niption=x\n',
        want: [['Unit', 'Descr iption', 'x']],
      },
      {
        title: 'a comment line ending in a backslash as a plain comment',
        text: '[Unit]\n# comment \\\nA=1\n',
        want: [['Unit', 'A', '1']],
      },
      {
        title: 'a CRLF continuation',
        text: '[Service]\r\nExecStart=/bin/echo a \\\r\nb\r\n',
        want: [['Service', 'ExecStart', '/bin/echo a  b']],
      },
      {
        title: 'the X-Fleet section like any other',
        text: '[X-Fleet]\nGlobal=true\nConflicts=a*\n',
        want: [
          ['X-Fleet', 'Global', 'true'],
          ['X-Fleet', 'Conflicts', 'a*'],
        ],
      },
      {
        title: 'a value that looks like a section header',
        text: '[Unit]\nA=[Service]\n',
        want: [['Unit', 'A', '[Service]']],
      },
      { title: 'a value made of spaces as empty', text: '[Unit]\nA=    \n', want: [['Unit', 'A', '']] },
      {
        title: 'a value with inner quotes untouched',
        text: '[Service]\nExecStart=/bin/sh -c "echo \'hi\'"\n',
        want: [['Service', 'ExecStart', '/bin/sh -c "echo \'hi\'"']],
      },
    ];
    for (const c of cases) {
      it(`accepts ${c.title}`, () => {
        expect(triples(c.text)).to.deep.equal(c.want);
      });
    }

    it('accepts UTF-8 bytes', () => {
      expect(triples(new TextEncoder().encode('[Unit]\nDescription=naïve\n'))).to.deep.equal([
        ['Unit', 'Description', 'naïve'],
      ]);
    });

    it('accepts bytes with a byte-order mark', () => {
      const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('[Unit]\nA=1\n')]);
      expect(triples(bytes)).to.deep.equal([['Unit', 'A', '1']]);
    });

    it('accepts a line of exactly the maximum length', () => {
      const value = 'x'.repeat(MAX_LINE_BYTES - 2);
      expect(parse(`[Unit]\nA=${value}\n`).options[0]?.value.length).to.equal(value.length);
    });
  });

  describe('line numbers', () => {
    it('records the 1-based line of each option', () => {
      const f = parse('# c\n[Unit]\n\nA=1\n[Service]\nB=2\n');
      expect(f.options.map((o) => o.line)).to.deep.equal([4, 6]);
    });

    it('records the first line of a continued option', () => {
      const f = parse('[Unit]\nA=1 \\\n2 \\\n3\nB=4\n');
      expect(f.options.map((o) => [o.name, o.line])).to.deep.equal([
        ['A', 2],
        ['B', 5],
      ]);
    });

    it('counts CRLF lines like LF lines', () => {
      const f = parse('[Unit]\r\n\r\nA=1\r\n');
      expect(f.options[0]?.line).to.equal(3);
    });
  });

  describe('rejects', () => {
    const cases: { title: string; text: string | Uint8Array; line?: number; match: RegExp }[] = [
      {
        title: 'an assignment before any section',
        text: 'A=1\n[Unit]\n',
        line: 1,
        match: /outside of any section/,
      },
      {
        title: 'a line without "=" inside a section',
        text: '[Unit]\nDescription\n',
        line: 2,
        match: /missing "="/,
      },
      {
        title: 'text after a section header',
        text: '[Unit] garbage\nA=1\n',
        line: 1,
        match: /invalid section header/,
      },
      {
        title: 'an unterminated section header',
        text: '[Unit\nA=1\n',
        line: 1,
        match: /invalid section header/,
      },
      { title: 'an empty section name', text: '[]\nA=1\n', line: 1, match: /section name is empty/ },
      { title: 'brackets inside a section name', text: '[a]b]\nA=1\n', line: 1, match: /brackets/ },
      { title: 'an empty option name', text: '[Unit]\n=value\n', line: 2, match: /option name is empty/ },
      {
        title: 'invalid UTF-8 bytes',
        text: new Uint8Array([0x5b, 0x55, 0x5d, 0x0a, 0x41, 0x3d, 0xff, 0x0a]),
        line: 2,
        match: /not valid UTF-8/,
      },
      {
        title: 'a truncated UTF-8 sequence',
        text: new Uint8Array([0x5b, 0x55, 0x5d, 0x0a, 0x41, 0x3d, 0xc3]),
        line: 2,
        match: /not valid UTF-8/,
      },
      {
        title: 'an overlong UTF-8 encoding',
        text: new Uint8Array([0x5b, 0x55, 0x5d, 0x0a, 0x41, 0x3d, 0xc0, 0xaf]),
        line: 2,
        match: /not valid UTF-8/,
      },
      {
        title: 'a UTF-16 surrogate encoded in UTF-8',
        text: new Uint8Array([0x5b, 0x55, 0x5d, 0x0a, 0x41, 0x3d, 0xed, 0xa0, 0x80]),
        line: 2,
        match: /not valid UTF-8/,
      },
      {
        title: 'a lone surrogate in a string',
        text: '[Unit]\nA=\uD800x\n',
        line: 2,
        match: /not valid UTF-8/,
      },
      { title: 'a NUL byte', text: '[Unit]\nA=a\0b\n', line: 2, match: /NUL/ },
      {
        title: 'a carriage return inside a line',
        text: '[Unit]\nA=a\rb\n',
        line: 2,
        match: /carriage return/,
      },
      {
        title: 'a line over 1 MiB',
        text: `[Unit]\nA=${'x'.repeat(MAX_LINE_BYTES)}\n`,
        line: 2,
        match: /line too long/,
      },
      {
        title: 'a continued line over 1 MiB',
        text: `[Unit]\nA=${'x'.repeat(MAX_LINE_BYTES / 2)}\\\n${'y'.repeat(MAX_LINE_BYTES / 2)}\n`,
        line: 2,
        match: /too long/,
      },
      {
        title: 'a value left ending in a lone backslash by trimming',
        text: '[Unit]\nA=x\\ \\\n\n',
        line: 2,
        match: /lone backslash/,
      },
      {
        title: 'a continued section header with garbage',
        text: '[Unit]\\\nA=1\n',
        line: 1,
        match: /invalid section header/,
      },
    ];
    for (const c of cases) {
      it(`rejects ${c.title}`, () => {
        const ps = problems(c.text);
        expect(ps).to.have.length.greaterThan(0);
        expect(ps[0]?.message).to.match(c.match);
        expect(ps[0]?.line).to.equal(c.line);
        expect(ps[0]?.file).to.equal('test.service');
      });
    }

    it('reports every problem of a file at once', () => {
      const ps = problems('Top=1\n[Unit]\nNoEquals\n[]\n[Service]\n=x\nGood=1\n');
      expect(ps.map((p) => p.line)).to.deep.equal([1, 3, 4, 6]);
    });

    it("does not repeat a broken header's error for each of its assignments", () => {
      const ps = problems('[Unit] junk\nA=1\nB=2\n');
      expect(ps).to.have.length(1);
    });

    it('names the section and option of a problem where it knows them', () => {
      const ps = problems('[Service]\nBroken\n');
      expect(ps[0]?.section).to.equal('Service');
      expect(formatProblem(ps[0]!)).to.match(/^test\.service line 2: \[Service\]: expected Name=Value/);
    });

    it('names the option of an assignment outside any section', () => {
      const ps = problems('Description=x\n');
      expect(ps[0]?.option).to.equal('Description');
    });

    it('treats a byte-order mark after the start as text, not as a mark', () => {
      const r = parseUnitFile('[Unit]\n\uFEFFA=1\n', 'test.service');
      expect(r.ok && r.value.options[0]?.name).to.equal('\uFEFFA');
    });
  });

  describe('optionValues', () => {
    it('lists all values of one option in one section in order', () => {
      const f = parse('[X-Fleet]\nConflicts=a\n[Unit]\nConflicts=z\n[X-Fleet]\nConflicts=b\n');
      expect(optionValues(f, 'X-Fleet', 'Conflicts')).to.deep.equal(['a', 'b']);
    });

    it('returns an empty list for an absent option', () => {
      expect(optionValues(parse('[Unit]\nA=1\n'), 'Unit', 'B')).to.deep.equal([]);
    });
  });
});
