import { expect } from 'chai';
import { describe, it, before, after, afterEach } from 'mocha';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { dropOrigin } from '../../agent/unit-drop-plan.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { installPackage, packagedLab } from '../../systemd-fixtures/cluster/fleetd-install.js';
import type { LabMachine } from '../../systemd-fixtures/lab/lab.js';
import { startEtcd, type EtcdInstance } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { unitRecord } from '../helpers/registry-builders.js';
import { unitText } from '../helpers/unit-builders.js';

/** fleetd's default unit_drop_dir, inside a machine. */
const DROP_DIR = '/etc/fleet/units';

function fleetConf(etcdUrl: string, prefix: string): string {
  return [
    '# fleet.conf written by spec/fleetd/drop-folder-lab.spec.ts (unit_drop_dir left at its default)',
    `etcd_servers=${etcdUrl}`,
    `etcd_key_prefix=${prefix}`,
    'agent_ttl=3s',
    'engine_reconcile_interval=1',
    '',
  ].join('\n');
}

/**
 * The unit drop folder on real machines: two machines running fleetd as a systemd service with
 * the default unit_drop_dir (/etc/fleet/units/, absent at first). Files are written into machine
 * 1's folder from the host; the test follows the cluster through the registry and systemd.
 */
describe('fleetd/drop folder in a lab: unit files dropped on a machine', function () {
  this.timeout(90_000);
  const lab = packagedLab('drop', 2);
  const prefix = `/drop-${randomBytes(4).toString('hex')}/`;
  let etcd: EtcdInstance | undefined;
  let registry: EtcdRegistry | undefined;
  let failed = false;

  const reg = (): EtcdRegistry => {
    if (registry === undefined) throw new Error('no registry: the lab did not start');
    return registry;
  };
  const m1 = (): LabMachine => lab.machine(1);
  const machineById = (id: string): LabMachine => {
    const m = lab.machines.find((x) => x.machineId === id);
    if (m === undefined) throw new Error(`no lab machine has ID ${id}`);
    return m;
  };
  const sh = async (machine: LabMachine, command: string): Promise<string> =>
    (await lab.exec(machine.index, ['sh', '-c', command])).stdout.trim();
  const isActive = (machine: LabMachine, unit: string): Promise<string> =>
    sh(machine, `systemctl is-active ${unit} || true`);
  /** Where a file of machine `m`'s drop folder is on the host. */
  const hostPath = (m: LabMachine, name: string): string => join(m.rootDir, DROP_DIR, name);
  const dropFile = async (m: LabMachine, name: string, text: string): Promise<void> => {
    await mkdir(join(m.rootDir, DROP_DIR), { recursive: true });
    await writeFile(hostPath(m, name), text);
  };
  const journalCount = async (m: LabMachine, pattern: string): Promise<number> =>
    Number(await sh(m, `journalctl -u fleetd -o cat --no-pager | grep -cF '${pattern}' || true`));

  /** Waits until `unit` runs at `hash` somewhere, as its agent reports and systemd says. */
  async function runningAt(unit: string, hash: string): Promise<LabMachine> {
    const machine = await eventually(
      async () => {
        const states = await reg().listUnitStates({ unit });
        expect(states.map((s) => `${s.hash} ${s.activeState}/${s.subState}`)).to.deep.equal([
          `${hash} active/running`,
        ]);
        return machineById(states[0]?.machine ?? '');
      },
      { timeoutMs: 30_000, intervalMs: 50, description: `${unit} at ${hash} to be reported active/running` },
    );
    expect(await isActive(machine, unit)).to.equal('active');
    return machine;
  }

  before(async function () {
    this.timeout(60_000);
    await lab.start();
    etcd = await startEtcd({ listenHosts: [lab.hostIp] });
    const etcdUrl = etcd.endpoints.find((e) => e.includes(lab.hostIp));
    if (etcdUrl === undefined) throw new Error(`etcd does not listen on ${lab.hostIp}`);
    registry = new EtcdRegistry({ endpoints: [etcd.clientUrl], prefix });
    for (const m of lab.machines) {
      await mkdir(join(m.rootDir, 'etc/fleet'), { recursive: true });
      await writeFile(join(m.rootDir, 'etc/fleet/fleet.conf'), fleetConf(etcdUrl, prefix));
      await installPackage(lab, m.index);
    }
    await eventually(
      async () =>
        expect((await reg().listMachines()).map((m) => m.id).sort()).to.deep.equal(
          lab.machines.map((m) => m.machineId).sort(),
        ),
      { timeoutMs: 30_000, intervalMs: 100, description: 'both machines to be announced' },
    );
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(60_000);
    try {
      await registry?.close();
    } finally {
      try {
        // A failed run keeps the journals: journalctl -D /var/lib/fleet-ts-lab/drop/machines/*/root/var/log/journal
        await lab.destroy({ keepJournals: failed });
      } finally {
        await etcd?.stop();
      }
    }
  });

  const first = unitRecord('dropped.service');
  const edited = unitRecord('dropped.service', [], '/bin/sleep 1000000');

  it('starts a unit file dropped into the folder of machine 1 (created after fleetd started)', async () => {
    const dropped = Date.now();
    await dropFile(m1(), 'dropped.service', unitText([]));
    const machine = await runningAt('dropped.service', first.hash);
    console.log(`      file dropped -> active/running on ${machine.name}: ${Date.now() - dropped} ms`);
    const stored = await reg().getUnit('dropped.service');
    expect(stored?.desiredState).to.equal('launched');
    expect(stored?.unit.origin).to.equal(dropOrigin(m1().machineId, `${DROP_DIR}/dropped.service`));
  });

  it('replaces the unit with the edited file, which then runs at its new hash', async () => {
    const editedAt = Date.now();
    await dropFile(m1(), 'dropped.service', unitText([], '/bin/sleep 1000000'));
    const machine = await runningAt('dropped.service', edited.hash);
    console.log(`      file edited -> new hash active/running: ${Date.now() - editedAt} ms`);
    expect(await sh(machine, 'systemctl show -p ExecStart --value dropped.service')).to.contain('1000000');
  });

  it('destroys and stops the unit when its file is removed', async () => {
    const placement = await reg().getPlacement('dropped.service');
    if (placement === undefined) throw new Error('dropped.service is not placed');
    const machine = machineById(placement.machine);
    const removed = Date.now();
    await rm(hostPath(m1(), 'dropped.service'));
    await eventually(
      async () => {
        expect(await reg().getUnit('dropped.service')).to.equal(undefined);
        expect(await reg().listUnitStates({ unit: 'dropped.service' })).to.deep.equal([]);
        expect(await isActive(machine, 'dropped.service')).not.to.equal('active');
      },
      { timeoutMs: 30_000, intervalMs: 50, description: 'dropped.service to be destroyed and stopped' },
    );
    console.log(`      file removed -> destroyed and stopped: ${Date.now() - removed} ms`);
  });

  it('submits nothing of an invalid file and logs its problem with file and line, its sibling running', async () => {
    const sibling = unitRecord('sibling.service');
    await dropFile(
      m1(),
      'broken.service',
      '[Service]\nExecStart=/bin/sleep infinity\n[X-Fleet]\nMachineOf=\n',
    );
    await dropFile(m1(), 'sibling.service', unitText([]));
    await runningAt('sibling.service', sibling.hash);
    const where = `${DROP_DIR}/broken.service line 4: [X-Fleet] MachineOf: needs a unit name`;
    await eventually(async () => expect(await journalCount(m1(), where)).to.equal(1), {
      timeoutMs: 15_000,
      intervalMs: 100,
      description: "the problem in fleetd's journal",
    });
    expect(await reg().getUnit('broken.service')).to.equal(undefined);
    expect((await reg().listUnits()).map((s) => s.unit.name)).to.deep.equal(['sibling.service']);
    await rm(hostPath(m1(), 'broken.service'));
    await rm(hostPath(m1(), 'sibling.service'));
    await eventually(async () => expect(await reg().listUnits()).to.deep.equal([]), {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
  });

  it('leaves a unit submitted through the API alone and logs the conflict on the machine', async () => {
    const api = unitRecord('taken.service', [], '/bin/sleep 4242');
    await reg().submitUnit(api, 'launched');
    const m2 = lab.machine(2);
    await dropFile(m2, 'taken.service', unitText([]));
    await eventually(
      async () =>
        expect(
          await journalCount(m2, 'unit file not submitted: a unit of that name came from elsewhere'),
        ).to.equal(1),
      { timeoutMs: 15_000, intervalMs: 100, description: "the conflict in m2's journal" },
    );
    expect(await sh(m2, 'journalctl -u fleetd -o cat --no-pager | grep -F taken.service')).to.contain(
      'submitted through the API',
    );
    expect(await reg().getUnit('taken.service')).to.deep.equal({ unit: api, desiredState: 'launched' });
    await rm(hostPath(m2, 'taken.service'));
    await reg().destroyUnit('taken.service');
  });
});
