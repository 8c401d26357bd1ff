import { expect } from 'chai';
import { describe, it, before, after, afterEach } from 'mocha';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { installPackage, packagedLab } from '../../systemd-fixtures/cluster/fleetd-install.js';
import type { LabMachine } from '../../systemd-fixtures/lab/lab.js';
import { startEtcd, type EtcdInstance } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { unitRecord } from '../helpers/registry-builders.js';

/** What each machine's fleet.conf says besides etcd: role=web on m1, role=db on m2. */
function fleetConf(machine: LabMachine, etcdUrl: string, prefix: string): string {
  return [
    '# fleet.conf written by spec/fleetd/fleetd-lab.spec.ts',
    `etcd_servers=${etcdUrl}`,
    `etcd_key_prefix=${prefix}`,
    // Well above the 2 s RestartSec of fleetd.service plus its start-up, so that a killed fleetd
    // that systemd restarts takes its presence over before the lease runs out.
    'agent_ttl=6s',
    'engine_reconcile_interval=1',
    `metadata="role=${machine.index === 1 ? 'web' : 'db'},index=${machine.index}"`,
    'verbosity=1',
    '',
  ].join('\n');
}

/**
 * fleetd as a systemd service in real machines: a two-machine lab, etcd on the host's bridge
 * address, fleetd installed by the Debian package (npm run package) and configured by
 * /etc/fleet/fleet.conf in each machine. The test drives the registry directly (no fleetctl) and
 * checks what systemd does inside the machines.
 */
describe('fleetd/fleetd in a lab: two machines running fleetd as a systemd service', function () {
  this.timeout(90_000);
  const lab = packagedLab('fd', 2);
  const prefix = `/fd-${randomBytes(4).toString('hex')}/`;
  let etcd: EtcdInstance | undefined;
  let registry: EtcdRegistry | undefined;
  let failed = false;

  /** The registry, once `before` made it. */
  const reg = (): EtcdRegistry => {
    if (registry === undefined) throw new Error('no registry: the lab did not start');
    return registry;
  };
  const machineById = (id: string): LabMachine => {
    const m = lab.machines.find((x) => x.machineId === id);
    if (m === undefined) throw new Error(`no lab machine has ID ${id}`);
    return m;
  };
  const sh = async (machine: LabMachine, command: string): Promise<string> =>
    (await lab.exec(machine.index, ['sh', '-c', command])).stdout.trim();
  const isActive = (machine: LabMachine, unit: string): Promise<string> =>
    sh(machine, `systemctl is-active ${unit} || true`);
  const mainPid = (machine: LabMachine, unit: string): Promise<string> =>
    sh(machine, `systemctl show -p MainPID --value ${unit}`);
  const stateOf = async (unit: string): Promise<string[]> =>
    (await reg().listUnitStates({ unit })).map(
      (s) => `${machineById(s.machine).name} ${s.activeState}/${s.subState}`,
    );

  before(async function () {
    this.timeout(60_000);
    await lab.start();
    etcd = await startEtcd({ listenHosts: [lab.hostIp] });
    const etcdUrl = etcd.endpoints.find((e) => e.includes(lab.hostIp));
    if (etcdUrl === undefined) throw new Error(`etcd does not listen on ${lab.hostIp}`);
    registry = new EtcdRegistry({ endpoints: [etcd.clientUrl], prefix });
    for (const m of lab.machines) {
      await mkdir(join(m.rootDir, 'etc/fleet'), { recursive: true });
      await writeFile(join(m.rootDir, 'etc/fleet/fleet.conf'), fleetConf(m, etcdUrl, prefix));
      await installPackage(lab, m.index);
    }
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(60_000);
    // The machines go first, so their fleetds still reach etcd while they shut down.
    try {
      await registry?.close();
    } finally {
      try {
        // A failed run keeps the journals: journalctl -D /var/lib/fleet-ts-lab/fd/machines/*/root/var/log/journal
        await lab.destroy({ keepJournals: failed });
      } finally {
        await etcd?.stop();
      }
    }
  });

  it('lists both machines with their machine IDs, addresses, metadata and boot IDs', async () => {
    const started = Date.now();
    const machines = await eventually(
      async () => {
        const list = await reg().listMachines();
        expect(list.map((m) => m.id).sort()).to.deep.equal(lab.machines.map((m) => m.machineId).sort());
        return list;
      },
      { timeoutMs: 30_000, intervalMs: 100, description: 'both machines to be announced' },
    );
    console.log(`      both machines listed ${Date.now() - started} ms after the first check`);
    for (const record of machines) {
      const m = machineById(record.id);
      expect(record.publicIp).to.equal(m.ip);
      expect(record.metadata).to.deep.equal({ role: m.index === 1 ? 'web' : 'db', index: String(m.index) });
      expect(record.bootId).to.be.a('string').and.not.equal('');
    }
  });

  it('has exactly one engine leading', async () => {
    const leader = await eventually(
      async () => {
        const id = await reg().currentLeader();
        expect(id).to.be.oneOf(lab.machines.map((m) => m.machineId));
        return id;
      },
      { timeoutMs: 15_000, intervalMs: 100, description: 'an engine to lead' },
    );
    const acquired = await Promise.all(
      lab.machines.map((m) =>
        sh(
          m,
          'journalctl -u fleetd -o cat --no-pager | grep \'"message":"engine leadership acquired"\' | grep -c \'"component":"engine"\' || true',
        ),
      ),
    );
    expect(acquired.map(Number).reduce((a, b) => a + b, 0)).to.equal(1);
    expect(leader).to.be.a('string');
  });

  it('logs to the journal as fleetd (journalctl -t fleetd), without a second timestamp', async () => {
    const m = lab.machines[0]!;
    const lines = (await sh(m, 'journalctl -t fleetd -o cat --no-pager | head -n 20')).trim().split('\n');
    expect(lines.length, 'lines tagged fleetd').to.be.at.least(3);
    for (const line of lines) {
      const record = JSON.parse(line) as Record<string, unknown>;
      expect(record, line).to.have.property('message');
      expect(record, line).not.to.have.property('timestamp');
    }
  });

  it('schedules a launched unit, which its agent reports active/running and systemd runs', async () => {
    const submitted = Date.now();
    await reg().submitUnit(unitRecord('hello.service'), 'launched');
    const placement = await eventually(
      async () => {
        const p = await reg().getPlacement('hello.service');
        if (p === undefined) throw new Error('not placed yet');
        const states = await reg().listUnitStates({ unit: 'hello.service' });
        expect(states.map((s) => `${s.activeState}/${s.subState}`)).to.deep.equal(['active/running']);
        return p;
      },
      { timeoutMs: 20_000, intervalMs: 20, description: 'hello.service to be reported active/running' },
    );
    console.log(`      submit -> active/running reported: ${Date.now() - submitted} ms`);
    expect(await isActive(machineById(placement.machine), 'hello.service')).to.equal('active');
  });

  it('stops the unit when its desired state becomes loaded', async () => {
    const placement = await reg().getPlacement('hello.service');
    if (placement === undefined) throw new Error('hello.service is not placed');
    const m = machineById(placement.machine);
    await reg().setDesiredState('hello.service', 'loaded');
    await eventually(
      async () => expect(await stateOf('hello.service')).to.deep.equal([`${m.name} inactive/dead`]),
      {
        timeoutMs: 15_000,
        intervalMs: 50,
      },
    );
    expect(await isActive(m, 'hello.service')).to.equal('inactive');
    expect(await sh(m, 'test -f /run/fleet/units/hello.service && echo present')).to.equal('present');
  });

  it('removes the unit file and its runtime link when the unit is destroyed', async () => {
    const placement = await reg().getPlacement('hello.service');
    if (placement === undefined) throw new Error('hello.service is not placed');
    const m = machineById(placement.machine);
    await reg().destroyUnit('hello.service');
    await eventually(
      async () => {
        expect(
          await sh(m, 'ls /run/fleet/units/ /run/systemd/system/ 2>/dev/null | grep -c hello || true'),
        ).to.equal('0');
        expect(await stateOf('hello.service')).to.deep.equal([]);
      },
      { timeoutMs: 15_000, intervalMs: 50, description: 'the file, the link and the state to go' },
    );
  });

  it('reports a unit whose command fails as failed', async () => {
    await reg().submitUnit(unitRecord('fail.service', [], '/bin/false'), 'launched');
    await eventually(
      async () => {
        const states = await reg().listUnitStates({ unit: 'fail.service' });
        expect(states.map((s) => s.activeState)).to.deep.equal(['failed']);
      },
      { timeoutMs: 15_000, intervalMs: 50, description: 'fail.service to be reported failed' },
    );
    await reg().destroyUnit('fail.service');
  });

  it('keeps a unit running, same main PID, across systemctl restart fleetd, the machine never leaving', async () => {
    await reg().submitUnit(unitRecord('keep.service'), 'launched');
    const placement = await eventually(
      async () => {
        const p = await reg().getPlacement('keep.service');
        if (p === undefined) throw new Error('not placed yet');
        expect(
          (await reg().listUnitStates({ unit: 'keep.service' })).map((s) => s.activeState),
        ).to.deep.equal(['active']);
        return p;
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    const m = machineById(placement.machine);
    const pid = await mainPid(m, 'keep.service');
    const fleetdPid = await mainPid(m, 'fleetd.service');
    expect(Number(pid)).to.be.greaterThan(0);

    // Samples the machine list all through the restart.
    const sampling = new AbortController();
    let missing = 0;
    const watch = (async () => {
      while (!sampling.signal.aborted) {
        const ids = (await reg().listMachines()).map((x) => x.id);
        if (!ids.includes(m.machineId)) missing++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const restarted = Date.now();
    try {
      const r = await lab.exec(m.index, ['systemctl', 'restart', 'fleetd.service']);
      expect(r.code, r.stderr).to.equal(0);
      await eventually(
        async () => {
          const states = await reg().listUnitStates({ unit: 'keep.service' });
          expect(states.map((s) => s.activeState)).to.deep.equal(['active']);
          expect(states[0]?.updatedAt).to.be.greaterThan(restarted);
        },
        { timeoutMs: 20_000, intervalMs: 50, description: 'the new fleetd to report keep.service' },
      );
    } finally {
      sampling.abort();
      await watch;
    }
    console.log(`      fleetd restart -> unit state republished: ${Date.now() - restarted} ms`);
    expect(await mainPid(m, 'fleetd.service')).not.to.equal(fleetdPid);
    expect(await mainPid(m, 'keep.service')).to.equal(pid);
    expect(await isActive(m, 'keep.service')).to.equal('active');
    expect(missing, 'times the machine was missing from listMachines').to.equal(0);
  });

  it('keeps the unit running when fleetd is killed, and the restarted fleetd adopts it', async () => {
    const placement = await reg().getPlacement('keep.service');
    if (placement === undefined) throw new Error('keep.service is not placed');
    const m = machineById(placement.machine);
    const pid = await mainPid(m, 'keep.service');
    const killed = Date.now();
    const r = await lab.exec(m.index, ['systemctl', 'kill', '-s', 'KILL', 'fleetd.service']);
    expect(r.code, r.stderr).to.equal(0);
    // systemd restarts it (Restart=always, RestartSec=2s); it takes the presence over or announces anew.
    await eventually(
      async () => {
        const states = await reg().listUnitStates({ unit: 'keep.service' });
        expect(states.map((s) => s.activeState)).to.deep.equal(['active']);
        expect(states[0]?.updatedAt).to.be.greaterThan(killed);
      },
      { timeoutMs: 20_000, intervalMs: 50, description: 'the restarted fleetd to report keep.service' },
    );
    console.log(`      fleetd SIGKILL -> unit state republished: ${Date.now() - killed} ms`);
    expect(await mainPid(m, 'keep.service')).to.equal(pid);
    expect((await reg().getPlacement('keep.service'))?.machine).to.equal(m.machineId);
    await reg().destroyUnit('keep.service');
  });

  it('runs a global unit only on the machines its MachineMetadata matches', async () => {
    await reg().submitUnit(
      unitRecord('web-global.service', ['Global=true', 'MachineMetadata=role=web']),
      'launched',
    );
    const [m1, m2] = lab.machines;
    if (m1 === undefined || m2 === undefined) throw new Error('two machines expected');
    await eventually(
      async () => expect(await stateOf('web-global.service')).to.deep.equal([`${m1.name} active/running`]),
      { timeoutMs: 15_000, intervalMs: 50, description: 'the global unit to run on m1' },
    );
    expect(await isActive(m1, 'web-global.service')).to.equal('active');
    expect(await isActive(m2, 'web-global.service')).not.to.equal('active');
    expect(
      await sh(m2, 'test -e /run/fleet/units/web-global.service && echo present || echo absent'),
    ).to.equal('absent');
    await reg().destroyUnit('web-global.service');
    await eventually(async () => expect(await isActive(m1, 'web-global.service')).not.to.equal('active'), {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
  });

  it('reloads fleet.conf on systemctl reload fleetd and announces the new metadata', async () => {
    const m2 = lab.machine(2);
    const conf = join(m2.rootDir, 'etc/fleet/fleet.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('role=db', 'role=cache'));
    const r = await lab.exec(m2.index, ['systemctl', 'reload', 'fleetd.service']);
    expect(r.code, r.stderr).to.equal(0);
    await eventually(
      async () => {
        const record = (await reg().listMachines()).find((x) => x.id === m2.machineId);
        expect(record?.metadata).to.deep.equal({ role: 'cache', index: '2' });
      },
      { timeoutMs: 15_000, intervalMs: 50, description: 'the new metadata of m2' },
    );
    const log = await sh(
      m2,
      'journalctl -u fleetd -o cat --no-pager | grep -c \'"message":"configuration reloaded"\' || true',
    );
    expect(Number(log)).to.equal(1);
  });
});
