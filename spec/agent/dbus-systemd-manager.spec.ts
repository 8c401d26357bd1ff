import { expect } from 'chai';
import { describe, it, before, after } from 'mocha';
import { randomBytes } from 'node:crypto';

import {
  escapeBusLabel,
  unescapeBusLabel,
  unitNameFromObjectPath,
} from '../../agent/dbus-systemd-manager.js';
import { Lab } from '../../systemd-fixtures/lab/lab.js';
import { repoRoot } from '../../systemd-fixtures/repo-root.js';

/** The repository (this file runs from dist/spec/agent/): bound into the machine at /opt/fleet-ts. */
const REPO_ROOT = repoRoot();
const IN_MACHINE_SUITE = '/opt/fleet-ts/dist/spec/agent/dbus-systemd-manager.in-machine.js';

/** The parts of mocha's JSON report this spec reads. */
interface MochaReport {
  readonly stats: { readonly tests: number; readonly passes: number; readonly failures: number };
  readonly tests: readonly { readonly fullTitle: string; readonly err: { readonly message?: string } }[];
  readonly failures: readonly { readonly fullTitle: string; readonly err: { readonly message?: string } }[];
}

describe('agent/dbus-systemd-manager: object paths', () => {
  const cases: [string, string][] = [
    ['web.service', 'web_2eservice'],
    ['web-app@a-b.service', 'web_2dapp_40a_2db_2eservice'],
    ['1st_unit.service', '_31st_5funit_2eservice'],
    ['a\\x2d.mount', 'a_5cx2d_2emount'],
    ['', '_'],
  ];
  for (const [name, label] of cases) {
    it(`escapes ${JSON.stringify(name)} as systemd does and back`, () => {
      expect(escapeBusLabel(name)).to.equal(label);
      expect(unescapeBusLabel(label)).to.equal(name);
    });
  }

  it('reads the unit name from a unit object path and nothing else', () => {
    expect(unitNameFromObjectPath('/org/freedesktop/systemd1/unit/dbus_2eservice')).to.equal('dbus.service');
    expect(unitNameFromObjectPath('/org/freedesktop/systemd1/job/42')).to.equal(undefined);
    expect(unitNameFromObjectPath('/org/freedesktop/systemd1/unit/')).to.equal(undefined);
    expect(unitNameFromObjectPath('/org/freedesktop/systemd1/unit/a/b')).to.equal(undefined);
  });
});

/**
 * The contract against real systemd: a one-machine lab, and inside it a Node process (the host's
 * node and this build, bound read-only) that runs dbus-systemd-manager.in-machine.js with mocha
 * on the machine's own system bus, exactly where fleetd would run. The host reads mocha's JSON
 * report. (A host process can reach the bus at /proc/PID1/root/run/dbus/system_bus_socket, but
 * the manager's file paths would then differ between host and machine.)
 */
describe('agent/dbus-systemd-manager: real systemd in a lab machine', function () {
  this.timeout(120_000);
  const lab = new Lab({ name: 'sdm', machines: 1, bindRo: [{ host: REPO_ROOT, machine: '/opt/fleet-ts' }] });
  let report: MochaReport;

  before(async () => {
    await lab.start();
    const output = `/root/sdm-report-${randomBytes(4).toString('hex')}.json`;
    const result = await lab.exec(
      1,
      [
        'node',
        '--enable-source-maps',
        '/opt/fleet-ts/node_modules/mocha/bin/mocha.js',
        '--no-config',
        '--forbid-only',
        '--forbid-pending',
        // A test that fails before closing its manager must not hang the run and lose the report.
        '--exit',
        '--timeout',
        '30000',
        '--reporter',
        'json',
        '--reporter-option',
        `output=${output}`,
        IN_MACHINE_SUITE,
      ],
      { timeoutMs: 100_000 },
    );
    const written = await lab.exec(1, ['cat', output]);
    expect(
      written.code,
      `no report from mocha in the machine (exit ${result.code}):\n${result.stderr}`,
    ).to.equal(0);
    report = JSON.parse(written.stdout) as MochaReport;
  });

  after(async () => {
    await lab.destroy();
  });

  function check(suite: string): void {
    const ran = report.tests.filter((t) => t.fullTitle.startsWith(suite));
    const failed = report.failures.filter((t) => t.fullTitle.startsWith(suite));
    expect(ran.length, `no test of "${suite}" ran`).to.be.greaterThan(0);
    expect(failed.map((t) => `${t.fullTitle}: ${t.err.message ?? '?'}`)).to.deep.equal([]);
  }

  it('passes the systemd manager contract', () => {
    check('systemd manager contract: DbusSystemdManager on real systemd');
  });

  it("passes the adapter's own tests (modes, runtime links, signals, timeouts)", () => {
    check('DbusSystemdManager on real systemd: the adapter');
  });

  it('runs every test it found, with no failure outside them', () => {
    expect(report.stats.failures).to.equal(0);
    expect(report.stats.passes).to.equal(report.stats.tests);
  });
});
