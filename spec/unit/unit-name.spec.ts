import { expect } from 'chai';
import { describe, it } from 'mocha';
import { isFleetError } from '../../lib/errors.js';
import {
  checkUnitName,
  goQuote,
  goQuoteRune,
  hasRecognizedUnitType,
  instanceName,
  isInstance,
  isTemplate,
  isValidUnitName,
  mangleUnitName,
  parseUnitName,
  parseValidUnitName,
  templateOf,
  unitTypeOf,
  validateUnitName,
  MAX_UNIT_NAME_BYTES,
  unitFileTempName,
  VALID_UNIT_TYPES,
} from '../../unit/unit-name.js';

describe('unit/unit-name', () => {
  describe('validateUnitName', () => {
    // fleet's api/units_test.go cases, then one row per rule and per quoting case of Go's %q.
    const rejected: readonly { name: string; title: string; message: string }[] = [
      { title: 'the empty name', name: '', message: 'unit name cannot be empty' },
      {
        title: 'a name of 257 bytes',
        name: `${'a'.repeat(249)}.service`,
        message: `unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 257`,
      },
      {
        title: 'a name over 237 UTF-8 bytes but under 237 characters',
        name: `${'é'.repeat(115)}.service`,
        message: `unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 238`,
      },
      { title: 'a name without a dot', name: 'foo', message: 'unit name must contain "."' },
      { title: 'a name ending in a dot', name: 'foo.service.', message: 'unit name cannot end in "."' },
      { title: 'an unknown type', name: 'foo.unknown', message: 'invalid unit type: "unknown"' },
      { title: 'a type in the wrong case', name: 'foo.servICE', message: 'invalid unit type: "servICE"' },
      {
        title: 'a type with a quote, Go-quoted',
        name: 'foo.serv"ice',
        message: 'invalid unit type: "serv\\"ice"',
      },
      {
        title: 'a type fleetctl knows nothing of',
        name: 'foo.network',
        message: 'invalid unit type: "network"',
      },
      {
        title: 'a template of a non-template type (fleet test)',
        name: 'dog=woof@.mount',
        message: 'invalid unit type for template: "mount"',
      },
      {
        title: 'a mount instance (fleet test)',
        name: 'foo@1.mount',
        message: 'invalid unit type for template: "mount"',
      },
      {
        title: 'a swap instance (fleet test)',
        name: 'foo@1.swap',
        message: 'invalid unit type for template: "swap"',
      },
      {
        title: 'a percent sign (fleet test)',
        name: 'foo%.service',
        message: "invalid character '%' in unit name",
      },
      {
        title: 'a slash (fleet test)',
        name: 'yes/no.service',
        message: "invalid character '/' in unit name",
      },
      {
        title: 'a plus sign (fleet test)',
        name: 'this+that.mount',
        message: "invalid character '+' in unit name",
      },
      { title: 'a space', name: 'a b.service', message: "invalid character ' ' in unit name" },
      {
        title: 'an apostrophe, escaped',
        name: "it's.service",
        message: "invalid character '\\'' in unit name",
      },
      {
        title: 'a double quote, unescaped in a rune',
        name: 'a"b.service',
        message: `invalid character '"' in unit name`,
      },
      { title: 'a tab', name: 'a\tb.service', message: "invalid character '\\t' in unit name" },
      { title: 'a newline', name: 'a\nb.service', message: "invalid character '\\n' in unit name" },
      { title: 'a NUL byte', name: 'a\u0000b.service', message: "invalid character '\\x00' in unit name" },
      { title: 'DEL', name: 'a\u007fb.service', message: "invalid character '\\x7f' in unit name" },
      {
        title: 'a printable non-ASCII letter, as is',
        name: 'café.service',
        message: "invalid character 'é' in unit name",
      },
      {
        title: 'a no-break space',
        name: 'a\u00a0b.service',
        message: "invalid character '\\u00a0' in unit name",
      },
      {
        title: 'a zero-width space',
        name: 'a\u200bb.service',
        message: "invalid character '\\u200b' in unit name",
      },
      { title: 'an emoji, as is', name: 'a😀.service', message: "invalid character '😀' in unit name" },
      {
        title: 'a private-use character',
        name: 'a\ue000.service',
        message: "invalid character '\\ue000' in unit name",
      },
      {
        title: 'a supplementary private-use character',
        name: 'a\u{f0000}.service',
        message: "invalid character '\\U000f0000' in unit name",
      },
      {
        title: 'a lone surrogate, as U+FFFD',
        name: 'a\ud800.service',
        message: "invalid character '�' in unit name",
      },
      { title: 'a leading @ (fleet test)', name: '@foo.service', message: 'unit name cannot start in "@"' },
      // What systemd's unit_name_is_valid refuses and fleet accepted.
      { title: 'a bare type', name: '.service', message: 'unit name needs a name before ".service"' },
      { title: 'a bare dot', name: '.', message: 'unit name needs a name before "."' },
      {
        title: 'a busname (dropped in systemd v230)',
        name: 'x.busname',
        message: 'invalid unit type: "busname"',
      },
      {
        title: 'a snapshot (dropped in systemd v228)',
        name: 'x.snapshot',
        message: 'invalid unit type: "snapshot"',
      },
      {
        title: "systemd's own limit, 256 bytes",
        name: `${'a'.repeat(248)}.service`,
        message: `unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 256`,
      },
      {
        title: 'a name whose temporary file name is 256 bytes (238)',
        name: `${'a'.repeat(230)}.service`,
        message: `unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 238`,
      },
      {
        title: 'length before the dot rule',
        name: 'a'.repeat(300),
        message: `unit name exceeds maximum length (237 bytes: systemd's 255 less 18 for the agent's temporary file name), got 300`,
      },
      { title: 'the dot rule before characters', name: 'a b', message: 'unit name must contain "."' },
      { title: 'the type before characters', name: 'a b.foo', message: 'invalid unit type: "foo"' },
      {
        title: 'characters before the leading @',
        name: '@a%.service',
        message: "invalid character '%' in unit name",
      },
    ];
    for (const { title, name, message } of rejected) {
      it(`rejects ${title}`, () => {
        expect(validateUnitName(name)).to.equal(message);
        expect(isValidUnitName(name)).to.equal(false);
      });
    }

    const accepted: readonly { title: string; name: string }[] = [
      { title: 'a colon (fleet test)', name: 'hello:world.service' },
      { title: 'a dash (fleet test)', name: 'foo-bar.mount' },
      { title: 'dots before the type (fleet test)', name: 'yo.yo.service' },
      { title: 'a service template (fleet test)', name: 'foo@.service' },
      { title: 'a socket instance (fleet test)', name: 'foo@1.socket' },
      { title: 'a backslash (fleet test)', name: 'yes@no\\.service' },
      { title: 'a name of exactly 237 bytes', name: `${'a'.repeat(229)}.service` },
      { title: 'every allowed character', name: 'azAZ09:-_.\\x.service' },
      { title: 'a target instance', name: 'foo@1.target' },
      { title: 'a timer template', name: 'foo@.timer' },
      { title: 'a path instance', name: 'foo@x.path' },
      { title: 'an instance with more @ signs', name: 'foo@bar@baz.service' },
    ];
    for (const { title, name } of accepted) {
      it(`accepts ${title}`, () => {
        expect(validateUnitName(name)).to.equal(undefined);
      });
    }

    it("keeps the agent's temporary file name of the longest valid name within 255 bytes", () => {
      const longest = `${'a'.repeat(MAX_UNIT_NAME_BYTES - '.service'.length)}.service`;
      expect(validateUnitName(longest)).to.equal(undefined);
      expect(Buffer.byteLength(unitFileTempName(longest, 'a1b2c3d4e5f6'))).to.equal(255);
      expect(validateUnitName(`a${longest}`)).to.not.equal(undefined);
    });

    it('accepts every API unit type', () => {
      for (const type of VALID_UNIT_TYPES) expect(validateUnitName(`foo.${type}`), type).to.equal(undefined);
    });
  });

  describe('parseUnitName', () => {
    // fleet's unit/unit_test.go TestNamedUnit table.
    const cases: readonly {
      full: string;
      name: string;
      prefix: string;
      template: string | undefined;
      instance: string;
      instanceOf: boolean;
    }[] = [
      {
        full: 'foo.service',
        name: 'foo',
        prefix: 'foo',
        template: undefined,
        instance: '',
        instanceOf: false,
      },
      {
        full: 'foo@.service',
        name: 'foo@',
        prefix: 'foo',
        template: 'foo@.service',
        instance: '',
        instanceOf: false,
      },
      {
        full: 'foo@bar.service',
        name: 'foo@bar',
        prefix: 'foo',
        template: 'foo@.service',
        instance: 'bar',
        instanceOf: true,
      },
      {
        full: 'foo@bar@baz.service',
        name: 'foo@bar@baz',
        prefix: 'foo',
        template: 'foo@.service',
        instance: 'bar@baz',
        instanceOf: true,
      },
      {
        full: 'foo.1@.service',
        name: 'foo.1@',
        prefix: 'foo.1',
        template: 'foo.1@.service',
        instance: '',
        instanceOf: false,
      },
      {
        full: 'foo.1@2.service',
        name: 'foo.1@2',
        prefix: 'foo.1',
        template: 'foo.1@.service',
        instance: '2',
        instanceOf: true,
      },
      {
        full: 'ssh@.socket',
        name: 'ssh@',
        prefix: 'ssh',
        template: 'ssh@.socket',
        instance: '',
        instanceOf: false,
      },
      {
        full: 'ssh@1.socket',
        name: 'ssh@1',
        prefix: 'ssh',
        template: 'ssh@.socket',
        instance: '1',
        instanceOf: true,
      },
    ];
    for (const c of cases) {
      it(`splits ${c.full}`, () => {
        const info = parseUnitName(c.full);
        expect(info).to.include({
          fullName: c.full,
          name: c.name,
          prefix: c.prefix,
          template: c.template,
          instance: c.instance,
        });
        expect(isInstance(c.full)).to.equal(c.instanceOf);
      });
    }

    it('gives the suffix with its dot and the type without', () => {
      expect(parseUnitName('a.b@c.socket')).to.include({ suffix: '.socket', type: 'socket', prefix: 'a.b' });
    });

    for (const bad of ['foo', 'bar@baz', '']) {
      it(`returns undefined for ${JSON.stringify(bad)}, which has no dot`, () => {
        expect(parseUnitName(bad)).to.equal(undefined);
      });
    }
  });

  describe('templates and instances', () => {
    const kinds: readonly { name: string; template: boolean; instance: boolean }[] = [
      { name: 'foo.service', template: false, instance: false },
      { name: 'foo@.service', template: true, instance: false },
      { name: 'foo@1.service', template: false, instance: true },
      { name: 'foo', template: false, instance: false },
    ];
    for (const k of kinds) {
      it(`classifies ${k.name} as ${k.template ? 'a template' : k.instance ? 'an instance' : 'neither'}`, () => {
        expect(isTemplate(k.name)).to.equal(k.template);
        expect(isInstance(k.name)).to.equal(k.instance);
      });
    }

    const templates: readonly [string, string | undefined][] = [
      ['web@1.service', 'web@.service'],
      ['foo@bar@baz.service', 'foo@.service'],
      ['ssh@1.socket', 'ssh@.socket'],
      ['web@.service', undefined],
      ['web.service', undefined],
    ];
    for (const [name, template] of templates) {
      it(`finds the template of ${name}: ${String(template)}`, () => {
        expect(templateOf(name)).to.equal(template);
      });
    }

    const instances: readonly [string, string, string | undefined][] = [
      ['web@.service', '1', 'web@1.service'],
      ['ssh@.socket', 'a@b', 'ssh@a@b.socket'],
      ['foo.1@.service', '2', 'foo.1@2.service'],
      ['web.service', '1', undefined],
      ['web@2.service', '1', undefined],
    ];
    for (const [template, instance, expected] of instances) {
      it(`instantiates ${template} with ${instance}: ${String(expected)}`, () => {
        expect(instanceName(template, instance)).to.equal(expected);
      });
    }
  });

  describe('hasRecognizedUnitType', () => {
    // fleet's unit/unit_test.go TestRecognizedUnitTypes table.
    const cases: readonly [string, boolean][] = [
      ['foo.service', true],
      ['foo.socket', true],
      ['foo.path', true],
      ['foo.timer', true],
      ['foo.mount', true],
      ['foo.automount', true],
      ['foo.device', true],
      ['foo.swap', false],
      ['foo.target', false],
      ['foo.snapshot', false],
      ['foo.network', false],
      ['foo.netdev', false],
      ['foo.link', false],
      ['foo.unknown', false],
    ];
    for (const [name, recognized] of cases) {
      it(`${recognized ? 'recognizes' : 'does not recognize'} ${name}`, () => {
        expect(hasRecognizedUnitType(name)).to.equal(recognized);
      });
    }
  });

  describe('mangleUnitName', () => {
    // fleetctl_test.go's unitNameMangleTests, docs/fleet-compat.md §1.5, and Go path.Base edge cases.
    const cases: readonly [string, string][] = [
      ['foo', 'foo.service'],
      ['foo.1', 'foo.1.service'],
      ['foo/bar.socket', 'bar.socket'],
      ['foo.socket', 'foo.socket'],
      ['foo.service', 'foo.service'],
      ['foo.target', 'foo.target.service'],
      ['foo@1', 'foo@1.service'],
      ['/etc/units/web@.service', 'web@.service'],
      ['units/web.service/', 'web.service'],
      ['', '..service'],
      ['//', '/.service'],
    ];
    for (const [arg, expected] of cases) {
      it(`mangles ${JSON.stringify(arg)} into ${expected}`, () => {
        expect(mangleUnitName(arg)).to.equal(expected);
      });
    }
  });

  describe('unitTypeOf', () => {
    it('returns the text after the last dot', () => {
      expect(unitTypeOf('a.b.timer')).to.equal('timer');
      expect(unitTypeOf('nodot')).to.equal(undefined);
    });
  });

  describe('checkUnitName and parseValidUnitName', () => {
    it('returns the anatomy of a valid name', () => {
      const result = checkUnitName('web@1.service');
      expect(result.ok).to.equal(true);
      if (result.ok) expect(result.value.instance).to.equal('1');
    });

    it("reports one problem named after the unit with fleet's message", () => {
      expect(checkUnitName('foo%.service')).to.deep.equal({
        ok: false,
        problems: [{ file: 'foo%.service', message: "invalid character '%' in unit name" }],
      });
    });

    it('throws a UNIT_NAME_INVALID FleetError for an invalid name', () => {
      let thrown: unknown;
      try {
        parseValidUnitName('@foo.service');
      } catch (err) {
        thrown = err;
      }
      expect(isFleetError(thrown, 'UNIT_NAME_INVALID')).to.equal(true);
      expect((thrown as Error).message).to.equal(
        'Invalid unit name "@foo.service": unit name cannot start in "@"',
      );
    });
  });

  describe('Go quoting', () => {
    const runes: readonly [number, string][] = [
      [0x61, "'a'"],
      [0x27, "'\\''"],
      [0x5c, "'\\\\'"],
      [0x07, "'\\a'"],
      [0x1b, "'\\x1b'"],
      [0x85, "'\\u0085'"],
      [0x10ffff, "'\\U0010ffff'"],
      [0xd800, "'�'"],
      [0x110000, "'�'"],
    ];
    for (const [cp, quoted] of runes) {
      it(`quotes rune U+${cp.toString(16).padStart(4, '0')} as ${quoted}`, () => {
        expect(goQuoteRune(cp)).to.equal(quoted);
      });
    }

    it('quotes a string with escaped quotes, backslashes and control characters', () => {
      expect(goQuote('a"b\\c\nd\u0000é')).to.equal('"a\\"b\\\\c\\nd\\x00é"');
    });

    it('leaves an apostrophe unescaped in a string', () => {
      expect(goQuote("it's")).to.equal('"it\'s"');
    });
  });
});
