import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'mocha';

import { parseConfigFile } from '../../fleetd/config-file.js';
import { DEPRECATED_OPTIONS, OPTION_LIST } from '../../fleetd/config-options.js';
import { artifactNames, debianArch, REPO_DIR } from '../../packaging/artifacts.js';
import { defaultFleetConf } from '../../packaging/fleet-conf.js';
import { renderManPage, roffEscape } from '../../packaging/man-page.js';
import { programFor } from '../../packaging/program-name.js';
import { BEGIN_MARKER, END_MARKER, optionsTable, withOptionsTable } from '../../packaging/readme-options.js';

describe('packaging: what npm run package generates', () => {
  describe('the multi-call executable', () => {
    it('is fleetd or fleetctl by the base name it runs under, and neither by another name', () => {
      expect(programFor('/usr/bin/fleetd')).to.equal('fleetd');
      expect(programFor('fleetd')).to.equal('fleetd');
      expect(programFor('/usr/bin/fleetctl')).to.equal('fleetctl');
      expect(programFor('./fleetctl')).to.equal('fleetctl');
      for (const other of ['fleet-ts', '/usr/bin/node', 'fleetctl2', 'xfleetd', 'fleet', '']) {
        expect(programFor(other), other).to.equal(undefined);
      }
    });

    it("names the .deb and .tar.gz after the version and Debian's and Node's architecture", () => {
      expect(artifactNames('0.1.0', 'x64')).to.deep.equal({
        deb: 'fleet-ts_0.1.0_amd64.deb',
        tar: 'fleet-ts-0.1.0-linux-x64.tar.gz',
      });
      expect(debianArch('arm64')).to.equal('arm64');
      expect(() => debianArch('mips')).to.throw(/no Debian architecture/);
    });
  });

  describe('/etc/fleet/fleet.conf', () => {
    const text = defaultFleetConf();

    it('sets nothing: every line is a comment or blank, so fleetd reads no setting from it', () => {
      const parsed = parseConfigFile(text);
      expect(parsed.problems).to.deep.equal([]);
      expect(parsed.settings).to.deep.equal([]);
    });

    it('names every option of fleetd once, commented out with its default and its meaning', () => {
      const commented = text.split('\n').filter((l) => /^#[a-z_]+=/.test(l));
      expect(commented.map((l) => l.slice(1).split('=')[0])).to.deep.equal(OPTION_LIST.map((o) => o.name));
      const unwrapped = text.replaceAll('\n# ', ' ');
      for (const o of OPTION_LIST) {
        expect(unwrapped, o.name).to.contain(o.meaning);
        const line = commented.find((l) => l.startsWith(`#${o.name}=`)) ?? '';
        // Uncommented, each line is valid and sets the option to exactly its default.
        const parsed = parseConfigFile(line.slice(1));
        expect(parsed.problems, line).to.deep.equal([]);
        expect(parsed.settings.map((s) => [s.name, s.value])).to.deep.equal([[o.name, o.defaultText]]);
        expect(o.parse(parsed.settings[0]?.value ?? '').ok, line).to.equal(true);
      }
      for (const deprecated of Object.keys(DEPRECATED_OPTIONS)) expect(text).to.contain(deprecated);
    });

    it('stays within 100 columns', () => {
      for (const line of text.split('\n')) expect(line.length, line).to.be.at.most(100);
    });
  });

  describe('man pages', () => {
    it('escapes backslashes, dashes and lines that roff would take for requests', () => {
      expect(roffEscape('a\\b')).to.equal('a\\eb');
      expect(roffEscape('--help')).to.equal('\\-\\-help');
      expect(roffEscape('.SH not a section')).to.equal('\\&.SH not a section');
      expect(roffEscape("'quote")).to.equal("\\&'quote");
      expect(roffEscape('plain text')).to.equal('plain text');
    });

    it('carries the help text verbatim as preformatted text, tabs expanded to 8 columns', () => {
      const page = renderManPage({
        name: 'fleetctl',
        section: 1,
        summary: 'a tool',
        version: '1.2.3',
        sections: [{ title: 'Description', text: 'USAGE:\n\tfleetctl [global options]\n\n.dot line\n' }],
        seeAlso: ['fleetd(8)', 'systemctl(1)'],
      });
      expect(page.split('\n')).to.deep.equal([
        '.TH FLEETCTL 1 "" "fleet-ts 1.2.3" "fleet-ts"',
        '.SH NAME',
        'fleetctl \\- a tool',
        '.SH DESCRIPTION',
        '.nf',
        '.ft CR',
        'USAGE:',
        '        fleetctl [global options]',
        '',
        '\\&.dot line',
        '.ft R',
        '.fi',
        '.SH SEE ALSO',
        '.BR fleetd (8),',
        '.BR systemctl (1)',
        '',
      ]);
    });
  });

  describe("README.md's options table", () => {
    const readme = readFileSync(join(REPO_DIR, 'README.md'), 'utf8');

    it('is the table generated from the option table behind --help (npm run readme:options rewrites it)', () => {
      expect(
        withOptionsTable(readme) === readme,
        'README.md is out of date: run npm run readme:options',
      ).to.equal(true);
    });

    it('lists every option of fleetd, once, with its default', () => {
      const table = readme.slice(readme.indexOf(BEGIN_MARKER), readme.indexOf(END_MARKER));
      const names = [...table.matchAll(/^\| `([a-z_]+)` \| ([^|]*) \|/gm)];
      expect(names.map((m) => m[1])).to.deep.equal(OPTION_LIST.map((o) => o.name));
      for (const [i, o] of OPTION_LIST.entries()) {
        expect(names[i]?.[2]?.trim(), o.name).to.equal(o.defaultText === '' ? '' : `\`${o.defaultText}\``);
      }
    });

    it('is replaced between its markers, and an edited table is noticed', () => {
      const edited = readme.replace('| `agent_ttl` | `10s` |', '| `agent_ttl` | `30s` |');
      expect(edited).not.to.equal(readme);
      expect(withOptionsTable(edited)).to.equal(readme);
      expect(optionsTable().split('\n')).to.have.length(OPTION_LIST.length + 2);
      expect(() => withOptionsTable('# no table')).to.throw(/no options table markers/);
    });
  });
});
