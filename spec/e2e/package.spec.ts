import { expect } from 'chai';
import { before, describe, it } from 'mocha';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { artifactNames, DEFAULT_OUT_DIR, packageVersion } from '../../packaging/artifacts.js';
import type { ClusterMachine } from '../../systemd-fixtures/cluster/fleet-cluster.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { figure, parseListUnits, LIST_UNITS_ARGS, serviceFile, useE2eCluster } from './e2e-harness.js';

const run = promisify(execFile);

/**
 * The Debian package's life on real machines, as an operator lives it: installed (every cluster
 * of the e2e suite installs it), upgraded while units run on the machine, and removed. Two
 * machines, so that units have somewhere to go.
 */
describe('e2e: the Debian package on two machines (install, upgrade, removal)', function () {
  this.timeout(180_000);
  const { e, c, units } = useE2eCluster(
    { name: 'e2e-pkg', machines: 2, agentTtl: '3s' },
    { ready: 'package cluster of 2', file: 'package' },
  );
  const UNITS = ['pkg-a.service', 'pkg-b.service', 'pkg-c.service'];
  const sh = async (m: ClusterMachine | string, command: string): Promise<{ code: number; out: string }> => {
    const r = await c().exec(m, ['sh', '-c', command], { timeoutMs: 120_000 });
    return { code: r.code, out: `${r.stdout}${r.stderr}`.trim() };
  };
  const mainPid = async (m: ClusterMachine | string, unit: string): Promise<string> =>
    (await sh(m, `systemctl show -p MainPID --value ${unit}`)).out;
  /** unit -> machine (short name) of every listed unit, from fleetctl list-units on `on`. */
  const placements = async (on: ClusterMachine = e().reachable()): Promise<Map<string, string>> => {
    const rows = parseListUnits((await e().ok(LIST_UNITS_ARGS, on)).stdout);
    return new Map(rows.map((r) => [r.unit, e().shortName(r.machineId)]));
  };

  /** The machine that runs the most of UNITS (at least two of three, on two machines). */
  let busy: ClusterMachine | undefined;
  let other: ClusterMachine | undefined;

  before(async () => {
    const files: string[] = [];
    for (const unit of UNITS) files.push(await units().write(unit, serviceFile()));
    await e().ok(['start', ...files]);
    await eventually(
      async () => {
        const rows = parseListUnits((await e().ok(LIST_UNITS_ARGS)).stdout);
        expect(
          rows
            .filter((r) => r.active === 'active')
            .map((r) => r.unit)
            .sort(),
        ).to.deep.equal(UNITS);
      },
      { timeoutMs: 30_000, intervalMs: 200, description: 'the units to be active' },
    );
    const where = await placements();
    const count = (m: ClusterMachine): number => [...where.values()].filter((x) => x === m.shortName).length;
    const [m1, m2] = c().machines;
    if (m1 === undefined || m2 === undefined) throw new Error('two machines expected');
    [busy, other] = count(m1) >= count(m2) ? [m1, m2] : [m2, m1];
  });
  const busyMachine = (): ClusterMachine => busy ?? expect.fail('no units started');
  const otherMachine = (): ClusterMachine => other ?? expect.fail('no units started');
  const unitsOn = async (m: ClusterMachine): Promise<string[]> =>
    [...(await placements()).entries()].filter(([, x]) => x === m.shortName).map(([u]) => u);

  it('runs fleetd from /usr/bin/fleetd under the packaged unit, with fleetctl and the man pages installed', async () => {
    for (const m of c().machines) {
      const pid = await mainPid(m, 'fleetd.service');
      expect((await sh(m, `readlink /proc/${pid}/exe`)).out, m.shortName).to.equal('/usr/bin/fleetd');
      const rss = (await sh(m, `grep VmRSS /proc/${pid}/status`)).out.replace(/\s+/g, ' ');
      figure(`packaged fleetd on ${m.shortName}: ${rss}`);
      expect((await sh(m, 'systemctl show -p FragmentPath --value fleetd.service')).out).to.equal(
        '/lib/systemd/system/fleetd.service',
      );
      expect((await sh(m, 'systemctl is-enabled fleetd.service')).out).to.equal('enabled');
      expect((await sh(m, 'command -v fleetctl && fleetctl version')).out).to.equal(
        `/usr/bin/fleetctl\nfleetctl version ${packageVersion()}`,
      );
      expect(
        (await sh(m, 'journalctl -u fleetd -o verbose --no-pager | grep -c SYSLOG_IDENTIFIER=fleetd')).code,
      ).to.equal(0);
      expect((await sh(m, "dpkg-query -W -f '${Status} ${Version}' fleet-ts")).out).to.equal(
        `install ok installed ${packageVersion()}`,
      );
      const files = (await sh(m, 'dpkg -L fleet-ts')).out.split('\n');
      for (const path of [
        '/usr/bin/fleetd',
        '/usr/bin/fleetctl',
        '/lib/systemd/system/fleetd.service',
        '/etc/fleet/fleet.conf',
        '/etc/fleet/units',
        '/usr/share/bash-completion/completions/fleetctl',
        '/usr/share/man/man1/fleetctl.1.gz',
        '/usr/share/man/man8/fleetd.8.gz',
      ]) {
        expect(files, path).to.include(path);
      }
    }
  });

  it('upgrades the package on a machine running units: fleetd restarts, no unit restarts or moves', async () => {
    const m = busyMachine();
    const before = await unitsOn(m);
    expect(before.length).to.be.at.least(2);
    const pids = new Map<string, string>();
    for (const unit of before) pids.set(unit, await mainPid(m, unit));
    const fleetdPid = await mainPid(m, 'fleetd.service');

    // A second package, one version higher: the same files, as a rebuilt release would be.
    const version = `${packageVersion()}+upgrade1`;
    const work = await mkdtemp(join(tmpdir(), 'fleet-pkg-upgrade-'));
    try {
      const tree = join(work, 'tree');
      await run('dpkg-deb', ['-R', join(DEFAULT_OUT_DIR, artifactNames(packageVersion()).deb), tree]);
      const control = join(tree, 'DEBIAN/control');
      await writeFile(
        control,
        (await readFile(control, 'utf8')).replace(/^Version: .*$/m, `Version: ${version}`),
      );
      const deb = join(work, artifactNames(version).deb);
      await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '--build', tree, deb], {
        maxBuffer: 1 << 20,
      });
      await copyFile(deb, join(m.rootDir, 'root/upgrade.deb'));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    const started = Date.now();
    const r = await sh(m, 'DEBIAN_FRONTEND=noninteractive dpkg -i /root/upgrade.deb');
    expect(r.code, r.out).to.equal(0);
    figure(`dpkg -i of the upgrade took ${Date.now() - started} ms`);
    expect((await sh(m, "dpkg-query -W -f '${Version}' fleet-ts")).out).to.equal(version);

    // Restarted (a new fleetd process) and back in the cluster.
    await eventually(
      async () => {
        expect((await sh(m, 'systemctl is-active fleetd.service')).out).to.equal('active');
        expect(await mainPid(m, 'fleetd.service')).not.to.equal(fleetdPid);
        const listed = await e().ok(['list-machines', '--no-legend', '--full'], otherMachine());
        expect(listed.stdout).to.contain(m.machineId);
      },
      { timeoutMs: 30_000, intervalMs: 200, description: 'fleetd to be back after the upgrade' },
    );
    // Well past agent_ttl (3 s) and a few reconciles: nothing moved, nothing was restarted.
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    expect(await unitsOn(m)).to.deep.equal(before);
    for (const unit of before) {
      expect(await mainPid(m, unit), unit).to.equal(pids.get(unit));
      expect((await sh(m, `systemctl is-active ${unit}`)).out, unit).to.equal('active');
    }
    for (const unit of UNITS.filter((u) => !before.includes(u))) {
      expect((await sh(m, `systemctl is-active ${unit}`)).out, `${unit} not on ${m.shortName}`).not.to.equal(
        'active',
      );
    }
  });

  it('removes the package: fleetd stops, the machine leaves, its units run on the other machine and on one machine only', async () => {
    const m = busyMachine();
    const o = otherMachine();
    const moving = await unitsOn(m);
    expect(moving.length).to.be.at.least(2);
    const started = Date.now();
    const r = await sh(m, 'DEBIAN_FRONTEND=noninteractive dpkg -r fleet-ts');
    expect(r.code, r.out).to.equal(0);
    expect((await sh(m, 'systemctl is-active fleetd.service')).out).not.to.equal('active');
    expect((await sh(m, 'command -v fleetctl || echo none')).out).to.equal('none');
    // A removal keeps the configuration; only a purge deletes it.
    expect((await sh(m, 'test -f /etc/fleet/fleet.conf && echo kept')).out).to.equal('kept');

    await eventually(
      async () => {
        const listed = await e().ok(['list-machines', '--no-legend', '--full'], o);
        expect(listed.stdout).not.to.contain(m.machineId);
        const where = await placements(o);
        for (const unit of UNITS) expect(where.get(unit), unit).to.equal(o.shortName);
        for (const unit of UNITS)
          expect((await sh(o, `systemctl is-active ${unit}`)).out, unit).to.equal('active');
        // No unit on two machines: fleetd's stop stopped the removed machine's units.
        for (const unit of moving) {
          expect((await sh(m, `systemctl is-active ${unit}`)).out, `${unit} on ${m.shortName}`).not.to.equal(
            'active',
          );
        }
      },
      {
        timeoutMs: 30_000,
        intervalMs: 250,
        description: `the units of ${m.shortName} to move to ${o.shortName}`,
      },
    );
    figure(`removal to units active elsewhere: ${Date.now() - started} ms`);

    const purge = await sh(
      m,
      'DEBIAN_FRONTEND=noninteractive dpkg -P fleet-ts && (test -e /etc/fleet && echo left || echo gone)',
    );
    expect(purge.code, purge.out).to.equal(0);
    expect(purge.out.split('\n').at(-1)).to.equal('gone');
  });
});
