import { expect } from 'chai';
import { describe, it, before, after } from 'mocha';
import { existsSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { isFleetError } from '../../lib/errors.js';
import { isClean } from '../../systemd-fixtures/lab/lab-leftovers.js';
import { isAlive } from '../../systemd-fixtures/lab/lab-processes.js';
import { Lab, type LabMachine } from '../../systemd-fixtures/lab/lab.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { repoRoot } from '../../systemd-fixtures/repo-root.js';

/** The repository (this file runs from dist/spec/lab/): bound into machines at /opt/fleet-ts. */
const REPO_ROOT = repoRoot();

/** Lists systemd's units over D-Bus from inside a machine, as `[[name, activeState], ...]`. */
const LIST_UNITS_SCRIPT = `
const dbus = require('/opt/fleet-ts/node_modules/dbus-next');
(async () => {
  const bus = dbus.systemBus();
  const systemd = await bus.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1');
  const manager = systemd.getInterface('org.freedesktop.systemd1.Manager');
  const units = await manager.ListUnits();
  process.stdout.write(JSON.stringify(units.map((unit) => [unit[0], unit[3]])));
  bus.disconnect();
})().catch((err) => { console.error(err); process.exit(1); });
`;

/** Reloads systemd and starts a unit over D-Bus from inside a machine; prints the job path. */
const START_UNIT_SCRIPT = `
const dbus = require('/opt/fleet-ts/node_modules/dbus-next');
(async () => {
  const bus = dbus.systemBus();
  const systemd = await bus.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1');
  const manager = systemd.getInterface('org.freedesktop.systemd1.Manager');
  await manager.Reload();
  process.stdout.write(await manager.StartUnit(process.argv[2], 'replace'));
  bus.disconnect();
})().catch((err) => { console.error(err); process.exit(1); });
`;

/** A process that starts a one-machine lab, prints the machine as JSON and runs until killed. */
function ownerScript(name: string): string {
  const labModule = new URL('../../systemd-fixtures/lab/lab.js', import.meta.url).href;
  return `
import { Lab } from ${JSON.stringify(labModule)};
const lab = new Lab({ name: ${JSON.stringify(name)}, machines: 1 });
await lab.start();
process.stdout.write(JSON.stringify(lab.machine(1)));
setInterval(() => undefined, 60_000);
`;
}

/** A tiny HTTP server on one host address (never on all of them). */
async function serveOn(ip: string, body: string): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, ip, resolve);
  });
  return { server, url: `http://${ip}:${(server.address() as AddressInfo).port}/` };
}

async function closeServer(server: Server | undefined): Promise<void> {
  if (server?.listening !== true) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

describe('Lab (real systemd machines in nspawn)', function () {
  this.timeout(60_000);

  const lab = new Lab({
    name: 'spec-lab-main',
    machines: 3,
    bindRo: [{ host: REPO_ROOT, machine: '/opt/fleet-ts' }],
  });
  let host: { server: Server; url: string } | undefined;

  const curl = (machine: LabMachine | number, url: string, on: Lab = lab) =>
    on.exec(machine, ['curl', '-sS', '-m', '1', url], { timeoutMs: 5_000 });

  before(async () => {
    await lab.start();
    host = await serveOn(lab.hostIp, 'fleet-lab-host');
  });

  after(async () => {
    await closeServer(host?.server);
    await lab.destroy();
  });

  it('boots every machine with systemd as PID 1 and a machine-id of its own', async () => {
    for (const machine of lab.machines) {
      const result = await lab.exec(machine, [
        'sh',
        '-c',
        'cat /proc/1/comm /etc/machine-id; systemctl is-system-running',
      ]);
      const [comm, machineId, state] = result.stdout.trim().split('\n');
      expect(comm).to.equal('systemd');
      expect(machineId).to.equal(machine.machineId);
      expect(state).to.be.oneOf(['running', 'degraded']);
    }
    expect(new Set(lab.machines.map((machine) => machine.machineId)).size).to.equal(3);
  });

  it('reaches the host on the bridge from every machine', async () => {
    for (const machine of lab.machines) {
      const result = await curl(machine, host!.url);
      expect(result.stdout, result.stderr).to.equal('fleet-lab-host');
    }
  });

  it('lists units through org.freedesktop.systemd1 with dbus-next from a Node process inside', async () => {
    const result = await lab.exec(1, ['node', '-'], { input: LIST_UNITS_SCRIPT });
    expect(result.code, result.stderr).to.equal(0);
    const units = new Map(JSON.parse(result.stdout) as [string, string][]);
    expect(units.get('dbus.service')).to.equal('active');
    expect(units.get('systemd-journald.service')).to.equal('active');
  });

  it('starts a unit through D-Bus that becomes active and serves a peer machine', async () => {
    const [first] = lab.machines;
    writeFileSync(
      join(first!.rootDir, 'root/echo.cjs'),
      "require('http').createServer((req, res) => res.end('hello from m1')).listen(8080);\n",
    );
    writeFileSync(
      join(first!.rootDir, 'etc/systemd/system/lab-echo.service'),
      '[Service]\nExecStart=/usr/bin/node /root/echo.cjs\n',
    );
    const started = await lab.exec(1, ['node', '-', 'lab-echo.service'], { input: START_UNIT_SCRIPT });
    expect(started.code, started.stderr).to.equal(0);
    expect(started.stdout).to.match(/^\/org\/freedesktop\/systemd1\/job\/[0-9]+$/);

    await eventually(async () => {
      expect((await lab.exec(1, ['systemctl', 'is-active', 'lab-echo.service'])).stdout.trim()).to.equal(
        'active',
      );
    });
    await eventually(async () =>
      expect((await curl(2, `http://${first!.ip}:8080/`)).stdout).to.equal('hello from m1'),
    );
  });

  it('keeps the machine-id across kill and boot', async () => {
    const before = lab.machine(3);
    await lab.kill(3);
    expect(lab.machine(3).pid1).to.equal(undefined);
    expect(isAlive(before.pid1!)).to.equal(false);
    const refused = await lab.exec(3, ['true']).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isFleetError(refused, 'HARNESS_COMMAND_FAILED')).to.equal(true);

    await lab.boot(3);
    const after = lab.machine(3);
    expect(after.pid1).to.not.equal(before.pid1);
    expect((await lab.exec(3, ['cat', '/etc/machine-id'])).stdout.trim()).to.equal(before.machineId);
    expect((await curl(3, host!.url)).stdout).to.equal('fleet-lab-host');
  });

  it('blocks traffic while a machine is cut and lets it through after heal', async () => {
    await lab.cut(2);
    const blocked = await curl(2, host!.url);
    expect(blocked.code).to.not.equal(0);
    expect((await lab.exec(2, ['systemctl', 'is-system-running'])).stdout.trim()).to.be.oneOf([
      'running',
      'degraded',
    ]);

    await lab.heal(2);
    await eventually(async () => expect((await curl(2, host!.url)).stdout).to.equal('fleet-lab-host'));
  });

  describe('beside another lab', () => {
    const side = new Lab({ name: 'spec-lab-side', machines: 2 });
    let sideHost: { server: Server; url: string } | undefined;

    after(async () => {
      await closeServer(sideHost?.server);
      await side.destroy();
    });

    it('runs on its own bridge and subnet, and its destroy leaves the first lab alone', async () => {
      await side.start();
      sideHost = await serveOn(side.hostIp, 'side-host');
      expect(side.bridge).to.not.equal(lab.bridge);
      expect(side.hostIp).to.not.equal(lab.hostIp);
      expect((await curl(1, sideHost.url, side)).stdout).to.equal('side-host');
      // No route between labs: the other lab's bridge is out of reach.
      expect((await curl(1, host!.url, side)).code).to.not.equal(0);

      await closeServer(sideHost.server);
      await side.destroy();
      expect(isClean(await Lab.findLeftovers(side.name))).to.equal(true);
      expect((await curl(1, host!.url)).stdout).to.equal('fleet-lab-host');
    });
  });

  describe('after a crash', () => {
    after(async () => {
      await Lab.removeLeftovers('spec-lab-crash');
    });

    it('starts again when an earlier run was killed without destroy', async () => {
      const crashed = new Lab({ name: 'spec-lab-crash', machines: 1 });
      await crashed.start();
      const { nspawnPid, pid1 } = crashed.machine(1);
      // The harness dies: its nspawn is killed, the machine's systemd lives on as an orphan.
      process.kill(nspawnPid!, 'SIGKILL');
      await eventually(() => expect(isAlive(nspawnPid!)).to.equal(false));
      expect(isAlive(pid1!)).to.equal(true);

      const again = new Lab({ name: 'spec-lab-crash', machines: 1 });
      await again.start();
      expect(isAlive(pid1!)).to.equal(false);
      expect((await again.exec(1, ['systemctl', 'is-system-running'])).stdout.trim()).to.be.oneOf([
        'running',
        'degraded',
      ]);
      await again.destroy();
      expect(isClean(await Lab.findLeftovers('spec-lab-crash'))).to.equal(true);
    });
  });

  describe('owned by another live process', () => {
    const name = 'spec-lab-owned';
    let owner: ChildProcess | undefined;

    after(async () => {
      if (owner !== undefined && owner.exitCode === null && owner.signalCode === null) {
        const exited = new Promise((resolve) => owner!.once('exit', resolve));
        owner.kill('SIGKILL');
        await exited;
      }
      await Lab.removeLeftovers(name);
    });

    it('refuses to start over it, leaves it alone on destroy, and takes over once that process died', async () => {
      owner = spawn(process.execPath, ['--input-type=module', '-e', ownerScript(name)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const output: string[] = [];
      owner.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      const machine = await eventually(() => JSON.parse(output.join('')) as LabMachine, {
        timeoutMs: 30_000,
      });

      const intruder = new Lab({ name, machines: 1 });
      const refused = await intruder.start().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isFleetError(refused, 'HARNESS_START_FAILED'), String(refused)).to.equal(true);
      await intruder.destroy();
      expect(isAlive(machine.pid1!)).to.equal(true);

      const exited = new Promise((resolve) => owner!.once('exit', resolve));
      owner.kill('SIGKILL');
      await exited;
      const successor = new Lab({ name, machines: 1 });
      await successor.start();
      expect(isAlive(machine.pid1!)).to.equal(false);
      expect(successor.machine(1).machineId).to.not.equal(machine.machineId);
      await successor.destroy();
      expect(isClean(await Lab.findLeftovers(name))).to.equal(true);
    });
  });

  describe('on destroy', () => {
    it('leaves no namespace, link, cgroup, process or state behind', async () => {
      const pids = lab.machines.flatMap((machine) => [machine.pid1!, machine.nspawnPid!]);
      await closeServer(host?.server);
      await lab.destroy();
      expect(await Lab.findLeftovers(lab.name)).to.deep.equal({
        processes: [],
        links: [],
        netns: [],
        cgroups: [],
        propagate: [],
        locks: [],
        stateFile: false,
        ownerFile: false,
      });
      expect(pids.filter(isAlive)).to.deep.equal([]);
      expect(existsSync(lab.stateDir)).to.equal(false);
    });
  });
});
