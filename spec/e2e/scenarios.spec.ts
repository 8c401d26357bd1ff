import { expect } from 'chai';
import { describe, it } from 'mocha';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { eventually } from '../../systemd-fixtures/eventually.js';
import { FLEETCTL_MAIN } from '../fleetctl/fake-ssh.js';
import { MACHINE_FLEETCTL, figure, onlyMachine, serviceFile, useE2eCluster } from './e2e-harness.js';
import { LabSsh } from './e2e-sshd.js';

/** Each machine's fleet.conf metadata: a role, a region and its own name. */
const METADATA: Record<string, Record<string, string>> = {
  m1: { role: 'web', region: 'east', host: 'm1' },
  m2: { role: 'db', region: 'east', host: 'm2' },
  m3: { role: 'db', region: 'west', host: 'm3' },
};

const UNIT_LINE = (unit: string, state: string): RegExp =>
  new RegExp(`^Unit ${unit.replace(/[.@]/g, '\\$&')} ${state} on ([0-9a-f]{8})\\.\\.\\./(\\S+)$`, 'm');

/**
 * End to end on three machines running fleetd, driven by the built fleetctl: every command of a
 * unit's life, every [X-Fleet] option, global units, templates, cat, status, journal and restart.
 * After each step what fleetctl lists is compared with what systemctl says inside the machines.
 * One cluster for the whole file; every test uses its own unit names and destroys them.
 */
describe('e2e: fleetctl scenarios on three machines', function () {
  this.timeout(120_000);
  const { e, units: dir } = useE2eCluster(
    { name: 'e2e-sc', machines: 3, metadata: (i) => METADATA[`m${i}`] },
    { ready: 'scenario cluster of 3', file: 'scenario' },
  );
  const id = (m: string): string => e().cluster.machine(m).machineId;
  const write = (name: string, text: string): Promise<string> => dir().write(name, text);

  it('lists every machine with its address and metadata (table, --full, JSON, inside a machine)', async () => {
    const machines = e().cluster.machines;
    const metadataText = (m: string): string =>
      Object.entries(METADATA[m] ?? {})
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
    const full = await e().ok(['list-machines', '--full', '--no-legend']);
    expect(
      full.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\t+/)),
    ).to.deep.equal(
      [...machines]
        .sort((a, b) => (a.machineId < b.machineId ? -1 : 1))
        .map((m) => [m.machineId, m.ip, metadataText(m.shortName)]),
    );
    const table = await e().ok(['list-machines'], 'm3');
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(/^MACHINE\t+IP\t+METADATA$/);
    for (const m of machines) {
      expect(lines).to.include(`${m.machineId.slice(0, 8)}...\t${m.ip}\t${metadataText(m.shortName)}`);
    }
    const json = JSON.parse((await e().ok(['list-machines', '--output', 'json'], 'm2')).stdout) as unknown[];
    expect(json).to.have.deep.members(
      machines.map((m) => ({ machine: m.machineId, ip: m.ip, metadata: METADATA[m.shortName] })),
    );
    const inside = await e().inside('m2', ['list-machines', '--full', '--no-legend']);
    expect(inside.code, inside.stderr).to.equal(0);
    expect(inside.stdout).to.equal(full.stdout);
  });

  it('takes a unit through submit, load, start, stop, unload and destroy, as systemd sees it', async () => {
    const unit = 'life.service';
    const path = await write(unit, serviceFile());

    const submitted = await e().ok(['submit', path]);
    expect(submitted.stdout).to.equal(`Unit ${unit} inactive\n`);
    expect(await e().unitFile(unit)).to.include({ dstate: 'inactive', state: 'inactive', target: '-' });
    await e().settle({ [unit]: { state: 'absent' } });

    const loaded = await e().ok(['load', path], 'm2');
    const loadLine = UNIT_LINE(unit, 'loaded').exec(loaded.stdout);
    expect(loadLine, loaded.stdout).not.to.equal(null);
    const file = await e().unitFile(unit, 'm3');
    expect(file).to.include({ dstate: 'loaded', state: 'loaded' });
    const machine = e().shortName(file.target);
    expect(file.target.slice(0, 8)).to.equal(loadLine?.[1]);
    expect(file.targetIp).to.equal(e().cluster.machine(machine).ip);
    expect(loadLine?.[2]).to.equal(file.targetIp);
    await e().settle({ [unit]: { state: 'inactive/dead', on: [machine] } });

    const started = await e().ok(['start', unit], 'm3');
    expect(started.stdout).to.match(UNIT_LINE(unit, 'launched'));
    expect(await e().unitFile(unit)).to.include({
      dstate: 'launched',
      state: 'launched',
      target: id(machine),
    });
    await e().settle({ [unit]: { state: 'active/running', on: [machine] } });
    // systemd read the file fleet-ts wrote: the description with %n expanded.
    expect((await e().systemd(machine, [unit])).get(unit)?.description).to.equal(`fleet-ts e2e unit ${unit}`);

    const stopped = await e().ok(['stop', unit]);
    expect(stopped.stdout).to.match(UNIT_LINE(unit, 'loaded'));
    expect(stopped.stderr).to.equal(`Successfully stopped units [${unit}].\n`);
    expect(await e().unitFile(unit)).to.include({ dstate: 'loaded', state: 'loaded', target: id(machine) });
    await e().settle({ [unit]: { state: 'inactive/dead', on: [machine] } });

    const unloaded = await e().ok(['unload', unit], 'm2');
    expect(unloaded.stdout).to.equal(`Unit ${unit} inactive\n`);
    expect(unloaded.stderr).to.equal(`Successfully unloaded units [${unit}].\n`);
    expect(await e().unitFile(unit)).to.include({ dstate: 'inactive', state: 'inactive', target: '-' });
    await e().settle({ [unit]: { state: 'absent' } });
    const fileGone = await e().cluster.exec(machine, ['test', '-e', `/run/fleet/units/${unit}`]);
    expect(fileGone.code, 'the unit file is removed from the machine').to.equal(1);

    // Started again straight from inactive, then destroyed while running.
    await e().ok(['start', unit]);
    const placed = await e().settle({ [unit]: { state: 'active/running' } });
    const destroyed = await e().ok(['destroy', unit], 'm3');
    expect(destroyed.stdout).to.equal(`Destroyed ${unit}\n`);
    expect((await e().listUnitFiles()).map((r) => r.unit)).not.to.include(unit);
    await e().settle({ [unit]: { state: 'absent' } });
    const cat = await e().fleetctl(['cat', unit]);
    expect([cat.code, cat.stderr]).to.deep.equal([1, `Unit ${unit} not found\n`]);
    const stopGone = await e().fleetctl(['stop', unit]);
    expect(stopGone.code, 'stop of a destroyed unit').to.not.equal(0);
    figure(`lifecycle: ${unit} ran on ${onlyMachine(placed, unit)} after the second start`);
  });

  it('prints the canonical unit with cat, whose SHA-1 is the hash list-unit-files shows', async () => {
    const unit = 'cat.service';
    const path = await write(
      unit,
      [
        '# comments and blank lines are dropped',
        '[Unit]',
        'Description=cat me',
        '',
        '[Service]',
        'ExecStart=/bin/sh -c "exec sleep infinity"',
        '; a second [Unit] block is merged into the first',
        '[Unit]',
        'After=dbus.service',
        '[X-Fleet]',
        'MachineMetadata=role=db',
        '',
      ].join('\n'),
    );
    await e().ok(['submit', path]);
    const canonical = [
      '[Unit]',
      'Description=cat me',
      'After=dbus.service',
      '',
      '[Service]',
      'ExecStart=/bin/sh -c "exec sleep infinity"',
      '',
      '[X-Fleet]',
      'MachineMetadata=role=db',
      '',
    ].join('\n');
    const cat = await e().ok(['cat', unit], 'm2');
    expect(cat.stdout).to.equal(canonical);
    const inside = await e().inside('m3', ['cat', unit]);
    expect(inside.stdout).to.equal(canonical);
    const file = await e().unitFile(unit);
    expect(file.hash).to.equal(createHash('sha1').update(canonical).digest('hex'));
    const tooMany = await e().fleetctl(['cat', unit, unit]);
    expect([tooMany.code, tooMany.stderr]).to.deep.equal([1, 'One unit file must be provided\n']);
    await e().destroy([unit]);
  });

  it('restarts a unit on its machine with a new main PID, and a global unit everywhere', async () => {
    const unit = 'restart.service';
    const global = 'restart-global.service';
    await e().ok(['start', await write(unit, serviceFile({ before: 'echo restart-marker' }))]);
    await e().ok(['start', await write(global, serviceFile({ fleet: ['Global=true'] }))]);
    await e().settle({
      [unit]: { state: 'active/running' },
      [global]: { state: 'active/running', count: 3 },
    });
    const before = await e().mainPids([unit]);
    const beforeGlobal = await Promise.all(
      e().cluster.machines.map(async (m) => (await e().systemd(m, [global])).get(global)?.mainPid),
    );
    const { machine, pid } = before.get(unit)!;

    const restarted = await e().ok(['restart', unit], 'm2');
    expect(restarted.stdout).to.match(UNIT_LINE(unit, 'loaded'));
    expect(restarted.stdout).to.match(UNIT_LINE(unit, 'launched'));
    await e().settle({ [unit]: { state: 'active/running', on: [machine] } });
    const after = (await e().mainPids([unit])).get(unit);
    expect(after?.machine).to.equal(machine);
    expect(after?.pid, 'a new main PID').to.not.equal(pid);
    const marks = await e().cluster.exec(machine, ['journalctl', '--no-pager', '-o', 'cat', '-u', unit]);
    expect(marks.stdout.split('\n').filter((l) => l === 'restart-marker')).to.have.length(2);

    const restartedGlobal = await e().ok(['restart', global]);
    expect(restartedGlobal.stdout).to.include(`Triggered global unit ${global} restart`);
    await eventually(
      async () => {
        await e().check({ [global]: { state: 'active/running', count: 3 } });
        const now = await Promise.all(
          e().cluster.machines.map(async (m) => (await e().systemd(m, [global])).get(global)?.mainPid),
        );
        now.forEach((p, i) => expect(p, `${global} on m${i + 1}`).to.not.equal(beforeGlobal[i]));
      },
      { timeoutMs: 20_000, intervalMs: 200, description: `${global} to run again with new PIDs everywhere` },
    );
    const notThere = await e().fleetctl(['restart', 'restart-missing.service']);
    expect(notThere.code, 'restart of a unit that is not in the cluster').to.equal(1);
    await e().destroy([unit, global]);
    await e().settle({ [unit]: { state: 'absent' }, [global]: { state: 'absent' } });
  });

  it('shows status and journal with fleetctl inside the machine that runs the unit', async () => {
    const unit = 'status.service';
    const marker = `status-marker-${randomBytes(4).toString('hex')}`;
    await e().ok([
      'start',
      await write(unit, serviceFile({ description: 'status me', before: `echo ${marker}` })),
    ]);
    const placed = await e().settle({ [unit]: { state: 'active/running' } });
    const machine = onlyMachine(placed, unit);
    const { pid } = (await e().mainPids([unit])).get(unit)!;

    const status = await e().inside(machine, ['status', unit]);
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(new RegExp(`^● ${unit.replace('.', '\\.')} - status me$`, 'm'));
    expect(status.stdout).to.match(/^\s+Active: active \(running\)/m);
    expect(status.stdout).to.match(new RegExp(`^\\s+Main PID: ${pid} \\(sleep\\)$`, 'm'));

    await eventually(
      async () => {
        const journal = await e().inside(machine, ['journal', '--lines', '20', '--output', 'cat', unit]);
        expect(journal.code, journal.stderr).to.equal(0);
        expect(journal.stdout.split('\n')).to.include(marker);
      },
      { timeoutMs: 5_000, intervalMs: 200, description: 'the marker in the journal' },
    );
    const short = await e().inside(machine, ['journal', unit]);
    expect(short.code).to.equal(0);
    expect(short.stdout).to.match(
      new RegExp(`^\\S+ \\d+ [\\d:]+ e2e-sc-${machine} sh\\[${pid}\\]: ${marker}$`, 'm'),
    );

    await e().ok(['stop', unit]);
    await e().settle({ [unit]: { state: 'inactive/dead', on: [machine] } });
    const stoppedStatus = await e().inside(machine, ['status', unit]);
    expect(stoppedStatus.code, "systemctl status' exit code for an inactive unit").to.equal(3);
    expect(stoppedStatus.stdout).to.match(/^\s+Active: inactive \(dead\)/m);

    await e().ok(['unload', unit]);
    const unloadedStatus = await e().inside(machine, ['status', unit]);
    expect([unloadedStatus.code, unloadedStatus.stderr]).to.deep.equal([
      1,
      `Unit ${unit} does not appear to be loaded.\n`,
    ]);
    const unloadedJournal = await e().inside(machine, ['journal', unit]);
    expect([unloadedJournal.code, unloadedJournal.stderr]).to.deep.equal([
      1,
      `Unit ${unit} does not appear to be running.\n`,
    ]);
    const missing = await e().inside(machine, ['status', 'status-missing.service']);
    expect([missing.code, missing.stderr]).to.deep.equal([
      1,
      'Unit status-missing.service does not exist.\n',
    ]);
    await e().destroy([unit]);
  });

  it('shows status and journal of units on other machines through fleetd from the host, without ssh', async () => {
    const unit = 'relayed.service';
    const global = 'relayed-global.service';
    const marker = `relayed-marker-${randomBytes(4).toString('hex')}`;
    const ticking = `echo ${marker}; while :; do echo tick-$$(date +%%s%%N); sleep 0.2; done`;
    await e().ok(['start', await write(unit, serviceFile({ description: 'relayed', before: ticking }))]);
    await e().ok([
      'start',
      await write(global, serviceFile({ fleet: ['Global=true'], before: `echo ${marker}` })),
    ]);
    const placed = await e().settle({
      [unit]: { state: 'active/running' },
      [global]: { state: 'active/running', count: 3 },
    });
    // Ask a fleetd on another machine than the unit's: the request goes through etcd.
    const home = onlyMachine(placed, unit);
    const via = e().cluster.machines.find((m) => m.shortName !== home)!.shortName;
    const status = await e().fleetctl(['status', unit], via);
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(/^● relayed\.service - relayed$/m);
    expect(status.stdout).to.match(/^\s+Active: active \(running\)/m);

    await eventually(
      async () => {
        const journal = await e().fleetctl(['journal', '--lines', '5000', '--output', 'cat', unit], via);
        expect(journal.code, journal.stderr).to.equal(0);
        expect(journal.stdout.split('\n')).to.include(marker);
      },
      { timeoutMs: 5_000, intervalMs: 200, description: 'the marker in the relayed journal' },
    );
    const three = await e().fleetctl(['journal', '--lines', '3', '--output', 'cat', unit], via);
    expect(three.stdout.trimEnd().split('\n'), three.stdout).to.have.length(3);

    // --follow streams new lines as they come, and ends when fleetctl is interrupted.
    const follower = spawn(
      process.execPath,
      [
        FLEETCTL_MAIN,
        '--endpoint',
        e().cluster.endpoint(via),
        'journal',
        '-f',
        '--lines',
        '0',
        '--output',
        'cat',
        unit,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let followed = '';
    follower.stdout.on('data', (b: Buffer) => (followed += b.toString()));
    const started = Date.now();
    try {
      await eventually(() => expect(followed.match(/^tick-\d+$/gm)?.length ?? 0).to.be.at.least(3), {
        timeoutMs: 10_000,
        intervalMs: 100,
        description: 'three new lines streamed by journal -f',
      });
      figure(`journal -f through the relay: 3 new lines after ${Date.now() - started} ms`);
    } finally {
      follower.kill('SIGINT');
    }
    await new Promise((resolve) => follower.once('close', resolve));
    await eventually(
      async () => {
        const left = await e().cluster.exec(home, ['pgrep', '-f', 'journalctl --unit=relayed']);
        expect(left.stdout, 'journalctl -f on the unit machine ends with the requester').to.equal('');
      },
      { timeoutMs: 15_000, intervalMs: 250, description: 'the followed journalctl to end' },
    );

    // A global unit: status and journal from every machine, each under a heading.
    const globalStatus = await e().fleetctl(['status', global], via);
    expect(globalStatus.code, globalStatus.stderr).to.equal(0);
    expect(globalStatus.stdout.match(/Active: active \(running\)/g)).to.have.length(3);
    await eventually(
      async () => {
        const globalJournal = await e().fleetctl(
          ['journal', '--lines', '50', '--output', 'cat', global],
          via,
        );
        expect(globalJournal.code, globalJournal.stderr).to.equal(0);
        for (const m of e().cluster.machines)
          expect(globalJournal.stdout).to.include(`Unit ${global} on ${m.machineId.slice(0, 8)}.../${m.ip}:`);
        expect(globalJournal.stdout.split('\n').filter((l) => l === marker)).to.have.length(3);
      },
      { timeoutMs: 5_000, intervalMs: 200, description: 'the marker in the journal on every machine' },
    );
    await e().destroy([unit, global]);
  });

  it('shows status and journal of units on other machines over ssh from the host', async () => {
    const unit = 'remote.service';
    const global = 'remote-global.service';
    const marker = `remote-marker-${randomBytes(4).toString('hex')}`;
    await e().ok([
      'start',
      await write(unit, serviceFile({ description: 'remote', before: `echo ${marker}` })),
    ]);
    await e().ok(['start', await write(global, serviceFile({ fleet: ['Global=true'] }))]);
    const placed = await e().settle({
      [unit]: { state: 'active/running' },
      [global]: { state: 'active/running', count: 3 },
    });
    const machine = e().cluster.machine(onlyMachine(placed, unit));

    if (!LabSsh.available()) {
      // No sshd to test against (openssh-server is not installed on this host): fleetctl on the
      // host is not on the unit's machine, so it runs ssh to the machine's address, which refuses
      // (or, without an ssh client on the host, fleetctl says it cannot run ssh).
      const knownHosts = join(dir().dir, 'known_hosts');
      const status = await e().fleetctl([
        '--ssh-username',
        'root',
        '--known-hosts-file',
        knownHosts,
        'status',
        '--ssh',
        unit,
      ]);
      if (existsSync('/usr/bin/ssh')) {
        expect(status.code).to.equal(255);
        expect(status.stderr).to.include(`connect to host ${machine.ip} port 22: Connection refused`);
        figure('ssh path: no sshd on this host, only the refused connection was checked');
      } else {
        expect(status.code).to.equal(1);
        expect(status.stderr).to.include('Unable to SSH to remote host: cannot run ssh');
        figure('ssh path: no ssh client on this host, only the error was checked');
      }
      await e().destroy([unit, global]);
      return;
    }

    const ssh = await LabSsh.start(e().cluster, join(dir().dir, 'ssh'));
    try {
      const flags = ['--ssh-username', 'root', '--known-hosts-file', ssh.knownHosts];
      const env = { env: ssh.env };
      const { pid } = (await e().mainPids([unit])).get(unit)!;

      const status = await e().fleetctl([...flags, 'status', '--ssh', unit], 'm1', env);
      expect(status.code, status.stderr).to.equal(0);
      expect(status.stdout).to.match(/^● remote\.service - remote$/m);
      expect(status.stdout).to.match(new RegExp(`^\\s+Main PID: ${pid} \\(sleep\\)$`, 'm'));

      const journal = await e().fleetctl(
        [...flags, 'journal', '--ssh', '--lines', '20', '--output', 'cat', unit],
        'm1',
        env,
      );
      expect(journal.code, journal.stderr).to.equal(0);
      expect(journal.stdout.split('\n')).to.include(marker);

      // A global unit's status runs on every machine that reports it, each under a heading.
      const globalStatus = await e().fleetctl([...flags, 'status', '--ssh', global], 'm2', env);
      expect(globalStatus.code, globalStatus.stderr).to.equal(0);
      for (const m of e().cluster.machines) {
        expect(globalStatus.stdout).to.include(`Unit ${global} on ${m.machineId.slice(0, 8)}.../${m.ip}:`);
      }
      expect(globalStatus.stdout.match(/Active: active \(running\)/g)).to.have.length(3);

      const sshUnit = await e().fleetctl([...flags, 'ssh', unit, 'cat', '/etc/hostname'], 'm1', env);
      expect([sshUnit.code, sshUnit.stdout]).to.deep.equal([0, `${machine.name}\n`]);
      const other = e().cluster.machines.find((m) => m.shortName !== machine.shortName)!;
      const sshMachine = await e().fleetctl(
        [...flags, 'ssh', '--machine', other.machineId.slice(0, 10), 'hostname'],
        'm1',
        env,
      );
      expect([sshMachine.code, sshMachine.stdout]).to.deep.equal([0, `${other.name}\n`]);

      // Strict host key checking (fleetctl's default) refuses a host that is not known.
      const unknownHost = await e().fleetctl(
        [
          '--ssh-username',
          'root',
          '--known-hosts-file',
          join(dir().dir, 'ssh', 'empty_known_hosts'),
          'status',
          '--ssh',
          unit,
        ],
        'm1',
        env,
      );
      expect(unknownHost.code).to.equal(255);
      expect(unknownHost.stderr).to.include('Host key verification failed');
      figure('ssh path: status, journal and ssh checked over sshd in the machines');
    } finally {
      await ssh.stop();
      await e().destroy([unit, global]);
    }
  });

  it('runs a global unit on every machine and stops and destroys it everywhere', async () => {
    const unit = 'global-all.service';
    const started = await e().ok(['start', await write(unit, serviceFile({ fleet: ['Global=true'] }))]);
    // fleet printed `Unit X ` (no state) for a global unit; fleet-ts prints its desired state.
    expect(started.stdout).to.equal(`Unit ${unit} inactive\nTriggered global unit ${unit} start\n`);
    await e().settle({ [unit]: { state: 'active/running', on: ['m1', 'm2', 'm3'] } });
    expect(await e().unitFile(unit)).to.include({ dstate: 'launched', state: '-', target: 'global' });

    const stopped = await e().ok(['stop', unit]);
    expect(stopped.stdout).to.equal(`Triggered global unit ${unit} stop\n`);
    await e().settle({ [unit]: { state: 'inactive/dead', on: ['m1', 'm2', 'm3'] } });
    const loaded = await e().unitFile(unit);
    expect(loaded).to.include({ dstate: 'loaded', state: '-', target: 'global' });

    await e().ok(['start', unit]);
    await e().settle({ [unit]: { state: 'active/running', on: ['m1', 'm2', 'm3'] } });
    const destroyed = await e().ok(['destroy', unit]);
    expect(destroyed.stdout).to.equal(`Destroyed ${unit}\n`);
    await e().settle({ [unit]: { state: 'absent' } });
  });

  it('runs a global unit only on the machines its MachineMetadata selects', async () => {
    const db = 'global-db.service';
    const either = 'global-m1-or-m3.service';
    await e().ok([
      'start',
      await write(db, serviceFile({ fleet: ['Global=true', 'MachineMetadata=role=db'] })),
      await write(either, serviceFile({ fleet: ['Global=true', 'MachineMetadata=host=m1 host=m3'] })),
    ]);
    await e().settle({
      [db]: { state: 'active/running', on: ['m2', 'm3'] },
      [either]: { state: 'active/running', on: ['m1', 'm3'] },
    });
    await e().destroy([db, either]);
    await e().settle({ [db]: { state: 'absent' }, [either]: { state: 'absent' } });
  });

  it('keeps a global unit off the machine of a unit it conflicts with, and runs it there once that unit is gone', async () => {
    const pinned = 'gconf-pinned.service';
    const global = 'gconf-global.service';
    await e().ok(['start', await write(pinned, serviceFile({ fleet: [`MachineID=${id('m2')}`] }))]);
    await e().ok([
      'start',
      await write(global, serviceFile({ fleet: ['Global=true', `Conflicts=${pinned}`] })),
    ]);
    await e().settle({
      [pinned]: { state: 'active/running', on: ['m2'] },
      [global]: { state: 'active/running', on: ['m1', 'm3'] },
    });
    await e().destroy([pinned]);
    await e().settle({
      [pinned]: { state: 'absent' },
      [global]: { state: 'active/running', on: ['m1', 'm2', 'm3'] },
    });
    await e().destroy([global]);
    await e().settle({ [global]: { state: 'absent' } });
  });

  it('places a unit on the machine its MachineID names, full or short, and never elsewhere', async () => {
    const full = 'mid-full.service';
    const short = 'mid-short.service';
    const nowhere = 'mid-nowhere.service';
    await e().ok([
      'start',
      await write(full, serviceFile({ fleet: [`MachineID=${id('m3')}`] })),
      await write(short, serviceFile({ fleet: [`MachineID=${id('m2').slice(0, 8)}`] })),
    ]);
    await e().settle({
      [full]: { state: 'active/running', on: ['m3'] },
      [short]: { state: 'active/running', on: ['m2'] },
    });
    expect(await e().unitFile(full)).to.include({ target: id('m3'), targetIp: e().cluster.machine('m3').ip });

    const unknown = await e().fleetctl([
      'start',
      '--block-attempts',
      '1',
      await write(nowhere, serviceFile({ fleet: ['MachineID=0123456789abcdef0123456789abcdef'] })),
    ]);
    expect(unknown.code).to.equal(1);
    expect(unknown.stdout + unknown.stderr).to.match(
      new RegExp(`Unit ${nowhere} cannot be placed: .*MachineID`),
    );
    expect(await e().unitFile(nowhere)).to.include({ dstate: 'launched', state: 'inactive', target: '-' });
    await e().destroy([full, short, nowhere]);
    await e().settle({
      [full]: { state: 'absent' },
      [short]: { state: 'absent' },
      [nowhere]: { state: 'absent' },
    });
  });

  it('places MachineOf followers (a chain) with their peer, and waits for a peer that is missing', async () => {
    const a = 'peer-a.service';
    const b = 'peer-b.service';
    const c = 'peer-c.service';
    const orphan = 'peer-orphan.service';
    // Followers first on the command line: each waits until its peer is placed.
    await e().ok([
      'start',
      await write(c, serviceFile({ fleet: [`MachineOf=${b}`] })),
      await write(b, serviceFile({ fleet: [`MachineOf=${a}`] })),
      await write(a, serviceFile()),
    ]);
    const placed = await e().settle({
      [a]: { state: 'active/running' },
      [b]: { state: 'active/running' },
      [c]: { state: 'active/running' },
    });
    const machine = onlyMachine(placed, a);
    expect([onlyMachine(placed, b), onlyMachine(placed, c)]).to.deep.equal([machine, machine]);

    const waiting = await e().fleetctl([
      'start',
      '--block-attempts',
      '1',
      await write(orphan, serviceFile({ fleet: ['MachineOf=peer-missing.service'] })),
    ]);
    expect(waiting.code).to.equal(1);
    expect(waiting.stdout + waiting.stderr).to.match(
      new RegExp(`Unit ${orphan} cannot be placed: .*peer-missing`),
    );
    await e().destroy([a, b, c, orphan]);
    await e().settle({ [a]: { state: 'absent' }, [b]: { state: 'absent' }, [c]: { state: 'absent' } });
  });

  it('spreads conflicting units over the machines, refuses a fourth, and places it once a machine frees up', async () => {
    const names = ['conflict-1.service', 'conflict-2.service', 'conflict-3.service'];
    const fourth = 'conflict-4.service';
    const file = serviceFile({ fleet: ['Conflicts=conflict-*.service'] });
    const paths = await Promise.all(names.map((n) => write(n, file)));
    await e().ok(['start', ...paths]);
    const placed = await e().settle(Object.fromEntries(names.map((n) => [n, { state: 'active/running' }])));
    expect(names.map((n) => onlyMachine(placed, n)).sort()).to.deep.equal(['m1', 'm2', 'm3']);

    const refused = await e().fleetctl(['start', '--block-attempts', '1', await write(fourth, file)]);
    expect(refused.code).to.equal(1);
    expect(refused.stdout + refused.stderr).to.include(
      `Unit ${fourth} cannot be placed: no machine can run it: Conflicts conflict-*.service`,
    );
    expect(await e().unitFile(fourth)).to.include({ dstate: 'launched', state: 'inactive', target: '-' });
    await e().settle({ [fourth]: { state: 'absent' } });

    const freed = onlyMachine(placed, names[0]!);
    await e().destroy([names[0]!]);
    await e().settle({
      [names[0]!]: { state: 'absent' },
      [fourth]: { state: 'active/running', on: [freed] },
    });
    await e().destroy([...names, fourth]);
    await e().settle(Object.fromEntries([...names, fourth].map((n) => [n, { state: 'absent' }])));
  });

  it('places units only where their MachineMetadata holds (AND across keys, OR within one)', async () => {
    const west = 'meta-west.service';
    const dbEast = 'meta-db-east.service';
    const webOrEast = 'meta-web-or-m3.service';
    const north = 'meta-north.service';
    await e().ok([
      'start',
      await write(west, serviceFile({ fleet: ['MachineMetadata=region=west'] })),
      await write(dbEast, serviceFile({ fleet: ['MachineMetadata=role=db region=east'] })),
      await write(
        webOrEast,
        serviceFile({ fleet: ['MachineMetadata=role=web', 'MachineMetadata=host=m1 host=m2'] }),
      ),
    ]);
    await e().settle({
      [west]: { state: 'active/running', on: ['m3'] },
      [dbEast]: { state: 'active/running', on: ['m2'] },
      [webOrEast]: { state: 'active/running', on: ['m1'] },
    });
    const refused = await e().fleetctl([
      'start',
      '--block-attempts',
      '1',
      await write(north, serviceFile({ fleet: ['MachineMetadata=region=north'] })),
    ]);
    expect(refused.code).to.equal(1);
    expect(refused.stdout + refused.stderr).to.include(
      `Unit ${north} cannot be placed: no machine can run it: MachineMetadata region=north excludes`,
    );
    await e().destroy([west, dbEast, webOrEast, north]);
    await e().settle({
      [west]: { state: 'absent' },
      [dbEast]: { state: 'absent' },
      [webOrEast]: { state: 'absent' },
    });
  });

  it('makes instances of a template, from a local template file and from the submitted one', async () => {
    const template = 'tmpl@.service';
    const file = serviceFile({
      description: 'tmpl instance %i',
      before: 'echo tmpl-%i',
      fleet: ['Conflicts=tmpl@*.service'],
    });
    await write(template, file);
    // tmpl@a: only the local template file exists (next to the instance's path).
    await e().ok(['start', dir().path('tmpl@a.service')]);
    const submitted = await e().ok(['submit', dir().path(template)]);
    expect(submitted.stdout).to.equal(`Unit ${template} inactive\n`);
    // tmpl@b, tmpl@c: by name only (no such file here), from the template in the cluster.
    await e().ok(['start', 'tmpl@b.service', 'tmpl@c.service'], 'm2');
    const instances = ['tmpl@a.service', 'tmpl@b.service', 'tmpl@c.service'];
    const placed = await e().settle(
      Object.fromEntries(instances.map((n) => [n, { state: 'active/running' }])),
    );
    expect(instances.map((n) => onlyMachine(placed, n)).sort()).to.deep.equal(['m1', 'm2', 'm3']);
    for (const n of instances) {
      const m = onlyMachine(placed, n);
      const i = n.slice('tmpl@'.length, -'.service'.length);
      expect((await e().systemd(m, [n])).get(n)?.description).to.equal(`tmpl instance ${i}`);
    }
    const files = await e().listUnitFiles();
    const hashes = new Set(files.filter((f) => f.unit.startsWith('tmpl@')).map((f) => f.hash));
    expect(hashes.size, 'instances share the template hash').to.equal(1);
    expect(files.find((f) => f.unit === template)).to.include({ dstate: 'inactive' });
    expect((await e().listUnits()).map((r) => r.unit)).not.to.include(template);
    const cannot = await e().fleetctl(['start', template]);
    expect(cannot.code).to.equal(1);
    expect(cannot.stderr).to.include(`cannot activate template "${template}"`);
    await e().destroy([...instances, template]);
    await e().settle(Object.fromEntries(instances.map((n) => [n, { state: 'absent' }])));
  });

  it('pushes the unit a new unit Replaces off its machine, to another machine that runs it', async () => {
    const old = 'replaced.service';
    const replacer = 'replacer.service';
    await e().ok(['start', await write(old, serviceFile())]);
    const before = await e().settle({ [old]: { state: 'active/running' } });
    const machine = onlyMachine(before, old);
    const oldPid = (await e().mainPids([old])).get(old)!.pid;
    await e().ok([
      'start',
      await write(replacer, serviceFile({ fleet: [`MachineMetadata=host=${machine}`, `Replaces=${old}`] })),
    ]);
    const after = await e().settle({
      [replacer]: { state: 'active/running', on: [machine] },
      [old]: { state: 'active/running', notOn: [machine] },
    });
    const pids = await e().mainPids([old, replacer]);
    expect(pids.get(old)?.machine).to.equal(onlyMachine(after, old));
    expect(pids.get(old)?.pid).to.not.equal(oldPid);
    figure(`Replaces: ${old} moved from ${machine} to ${onlyMachine(after, old)}`);
    await e().destroy([old, replacer]);
    await e().settle({ [old]: { state: 'absent' }, [replacer]: { state: 'absent' } });
  });

  it('keeps the running unit when a new unit closes a Replaces cycle with it (fleet TestScheduleCircularReplace)', async () => {
    const a = 'circ-a.service';
    const b = 'circ-b.service';
    // Both may run only on m2, and each replaces the other: only one can run.
    await e().ok([
      'start',
      await write(a, serviceFile({ fleet: ['MachineMetadata=host=m2', `Replaces=${b}`] })),
    ]);
    await e().settle({ [a]: { state: 'active/running', on: ['m2'] } });
    const pid = (await e().mainPids([a])).get(a)!.pid;
    await e().ok([
      'start',
      '--no-block',
      await write(b, serviceFile({ fleet: ['MachineMetadata=host=m2', `Replaces=${a}`] })),
    ]);
    const reason = `Replaces cycle: ${a} replaces ${b}, ${b} replaces ${a}; kept ${a}`;
    await eventually(async () => expect(await e().registry().getUnplaceable(b)).to.equal(reason), {
      timeoutMs: 10_000,
      intervalMs: 100,
      description: `${b} to be left out of the cycle`,
    });
    expect(await e().unitFile(b)).to.include({ dstate: 'launched', target: '-' });
    // The engine reconciles every second here: look a few times that nothing moves.
    for (let i = 0; i < 5; i++) {
      await e().check({ [a]: { state: 'active/running', on: ['m2'] }, [b]: { state: 'absent' } });
      expect((await e().mainPids([a])).get(a)?.pid, `${a} MainPID`).to.equal(pid);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    figure(`circular Replaces: ${a} kept running on m2 (MainPID ${pid}), ${b} left out`);
    await e().destroy([a, b]);
    await e().settle({ [a]: { state: 'absent' }, [b]: { state: 'absent' } });
  });

  it('keeps replaced units on their machines (start --replace), where least-loaded would move them', async () => {
    const names = ['rep-a.service', 'rep-b.service', 'rep-c.service', 'rep-d.service'];
    for (const n of names) await write(n, serviceFile({ description: 'first %n' }));
    await e().ok(['start', ...names.map((n) => dir().path(n))]);
    const before = await e().settle(Object.fromEntries(names.map((n) => [n, { state: 'active/running' }])));
    // In name order on an empty cluster: a and d share the first machine, b and c one each. With
    // a and c replaced at once, least-loaded alone would put a where c was, and c where a was.
    const pids = await e().mainPids(names);
    for (const n of ['rep-a.service', 'rep-c.service'])
      await write(n, serviceFile({ description: 'second %n' }));
    await e().ok(['start', '--replace', dir().path('rep-a.service'), dir().path('rep-c.service')]);
    const after = await e().settle(
      Object.fromEntries(names.map((n) => [n, { state: 'active/running', on: before.get(n) ?? [] }])),
    );
    const now = await e().mainPids(names);
    for (const n of names) {
      const m = onlyMachine(after, n);
      const description = (await e().systemd(m, [n])).get(n)?.description;
      const replaced = n === 'rep-a.service' || n === 'rep-c.service';
      expect(description, n).to.equal(`${replaced ? 'second' : 'first'} ${n}`);
      if (replaced) expect(now.get(n)?.pid, `${n} restarted`).to.not.equal(pids.get(n)?.pid);
      else expect(now.get(n)?.pid, `${n} untouched`).to.equal(pids.get(n)?.pid);
    }
    figure(`replace: ${names.map((n) => `${n} on ${onlyMachine(after, n)}`).join(', ')}, none moved`);
    await e().destroy(names);
    await e().settle(Object.fromEntries(names.map((n) => [n, { state: 'absent' }])));
  });

  it('leaves no unit and no unit file behind once every unit is destroyed', async () => {
    const left = await e().listUnitFiles();
    expect(left.map((f) => f.unit)).to.deep.equal([]);
    expect(await e().listUnits()).to.deep.equal([]);
    for (const m of e().cluster.machines) {
      const r = await e().cluster.exec(m, ['sh', '-c', 'ls -A /run/fleet/units/ 2>/dev/null; true']);
      expect(r.stdout.trim(), `unit files left in ${m.shortName}`).to.equal('');
    }
    const inside = await e().cluster.exec('m1', [...MACHINE_FLEETCTL, 'list-units', '--no-legend']);
    expect([inside.code, inside.stdout]).to.deep.equal([0, '']);
  });
});
