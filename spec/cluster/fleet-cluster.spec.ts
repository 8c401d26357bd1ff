import { expect } from 'chai';
import { describe, it, before, after, afterEach } from 'mocha';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { EtcdRegistry } from '../../registry/etcd-registry.js';
import { FleetCluster } from '../../systemd-fixtures/cluster/fleet-cluster.js';
import { isClean } from '../../systemd-fixtures/lab/lab-leftovers.js';
import { Lab } from '../../systemd-fixtures/lab/lab.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

/** The machine IDs in fleetctl's `list-machines --full --no-legend` output. */
function listedIds(stdout: string): string[] {
  return stdout
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.split(/\s+/)[0] ?? '')
    .sort();
}

/**
 * The FleetCluster harness: three machines with fleetd as a systemd service, etcd on the host,
 * fleetctl on the host against each machine's socket, and the fault controls the end-to-end tests
 * rely on.
 */
describe('systemd-fixtures/cluster: FleetCluster with three machines', function () {
  this.timeout(120_000);
  let cluster: FleetCluster | undefined;
  let registry: EtcdRegistry | undefined;
  let failed = false;

  const c = (): FleetCluster => {
    if (cluster === undefined) throw new Error('the cluster did not start');
    return cluster;
  };
  const reg = (): EtcdRegistry => {
    registry ??= c().registry();
    return registry;
  };
  const listedMachines = async (): Promise<string[]> =>
    (await reg().listMachines()).map((m) => c().machineById(m.id)?.shortName ?? m.id).sort();

  before(async function () {
    this.timeout(120_000);
    const started = Date.now();
    cluster = await FleetCluster.start({
      name: 'spec-fc',
      machines: 3,
      agentTtl: '3s',
      metadata: (i) => ({ role: i === 1 ? 'web' : 'db', index: String(i) }),
      fleetdConfig: ['engine_reconcile_interval=1'],
    });
    console.log(`      cluster of 3 ready in ${Date.now() - started} ms`);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(60_000);
    // A failed run keeps the journals: journalctl -D /var/lib/fleet-ts-lab/spec-fc/machines/*/root/var/log/journal
    await cluster?.destroy({ keepJournals: failed });
  });

  it('lists every machine in etcd with its address and metadata', async () => {
    const records = await reg().listMachines();
    expect(records.map((r) => r.id).sort()).to.deep.equal(
      c()
        .machines.map((m) => m.machineId)
        .sort(),
    );
    for (const record of records) {
      const m = c().machineById(record.id);
      expect(m, record.id).not.to.equal(undefined);
      expect(record.publicIp).to.equal(m?.ip);
      expect(record.metadata).to.deep.equal({ role: m?.index === 1 ? 'web' : 'db', index: String(m?.index) });
    }
  });

  it('has exactly one engine leading, on one of its machines', async () => {
    const leader = await c().leader();
    expect(leader?.shortName).to.be.oneOf(['m1', 'm2', 'm3']);
    const acquired = await Promise.all(
      c().machines.map(async (m) => {
        const log = await c().journal(m, 'fleetd.service');
        // The registry logs the same message; the engine's line counts once per acquisition.
        return log
          .split('\n')
          .filter(
            (l) => l.includes('"message":"engine leadership acquired"') && l.includes('"component":"engine"'),
          ).length;
      }),
    );
    expect(acquired.reduce((a, b) => a + b, 0)).to.equal(1);
  });

  it('serves the API of every machine on a socket the host reaches', async () => {
    for (const m of c().machines) {
      const reply = await c().api(m, 'GET', '/fleet/v1/machines');
      expect(reply.status, reply.body).to.equal(200);
      const body = JSON.parse(reply.body) as { machines: { id: string }[] };
      expect(body.machines.map((x) => x.id).sort()).to.deep.equal(
        c()
          .machines.map((x) => x.machineId)
          .sort(),
      );
    }
  });

  it('runs fleetctl list-machines on the host against each machine', async () => {
    const ids = c()
      .machines.map((m) => m.machineId)
      .sort();
    for (const m of c().machines) {
      const r = await c().fleetctl(m, ['list-machines', '--full', '--no-legend']);
      expect(r.code, r.stderr).to.equal(0);
      expect(listedIds(r.stdout)).to.deep.equal(ids);
    }
    const table = await c().fleetctl('m1', ['list-machines']);
    expect(table.stdout.split('\n')[0]).to.match(/^MACHINE\s+IP\s+METADATA/);
    expect(table.stdout).to.include(c().machine('m2').ip);
  });

  it('has fleetctl on the PATH of every machine', async () => {
    for (const m of c().machines) {
      const r = await c().exec(m, ['sh', '-c', 'fleetctl list-machines --no-legend --full']);
      expect(r.code, r.stderr).to.equal(0);
      expect(listedIds(r.stdout)).to.include(m.machineId);
    }
  });

  it('runs fleetctl inside a machine without an --endpoint (/var/run/fleet.sock)', async () => {
    const r = await c().exec('m2', ['fleetctl', 'list-machines', '--full', '--no-legend']);
    expect(r.code, r.stderr).to.equal(0);
    expect(listedIds(r.stdout)).to.deep.equal(
      c()
        .machines.map((m) => m.machineId)
        .sort(),
    );
  });

  it('starts a unit file from the host with fleetctl and reports it active', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleet-cluster-spec-'));
    try {
      await writeFile(
        join(dir, 'ping.service'),
        '[Unit]\nDescription=spec unit\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nMachineMetadata=role=web\n',
      );
      const r = await c().fleetctl('m3', ['start', join(dir, 'ping.service')]);
      expect(r.code, r.stderr).to.equal(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await eventually(
      async () => {
        const r = await c().fleetctl('m2', ['list-units', '--no-legend', '--full']);
        expect(r.stdout).to.match(/^ping\.service\s+\S+\/10\.250\.\d+\.11\s+active\s+running/m);
      },
      { timeoutMs: 20_000, intervalMs: 200, description: 'ping.service to run on m1' },
    );
    const active = await c().exec('m1', ['systemctl', 'is-active', 'ping.service']);
    expect(active.stdout.trim()).to.equal('active');
    const destroyed = await c().fleetctl('m1', ['destroy', 'ping.service']);
    expect(destroyed.code, destroyed.stderr).to.equal(0);
  });

  it('drops a killed machine after its agent_ttl and takes it back once booted', async () => {
    await c().killMachine('m3');
    await eventually(async () => expect(await listedMachines()).to.deep.equal(['m1', 'm2']), {
      timeoutMs: 15_000,
      intervalMs: 100,
      description: 'm3 to vanish from etcd',
    });
    await c().bootMachine('m3');
    await c().waitUntilReady({ timeoutMs: 30_000 });
    expect(await listedMachines()).to.deep.equal(['m1', 'm2', 'm3']);
    const r = await c().fleetctl('m3', ['list-machines', '--no-legend', '--full']);
    expect(r.code, r.stderr).to.equal(0);
    expect(listedIds(r.stdout)).to.have.length(3);
  });

  it('drops a cut machine and takes it back once healed', async () => {
    await c().cutMachine('m2');
    await eventually(async () => expect(await listedMachines()).to.deep.equal(['m1', 'm3']), {
      timeoutMs: 15_000,
      intervalMs: 100,
      description: 'm2 to vanish from etcd',
    });
    await c().healMachine('m2');
    await c().waitUntilReady({ timeoutMs: 30_000 });
    expect(await listedMachines()).to.deep.equal(['m1', 'm2', 'm3']);
  });

  it('lets fleetd ride out an etcd restart', async () => {
    await c().stopEtcd();
    expect(c().etcdMembers.map((m) => m.running)).to.deep.equal([false]);
    const unavailable = await c().fleetctl('m1', ['list-machines'], { timeoutMs: 30_000 });
    expect(unavailable.code).not.to.equal(0);
    await c().startEtcd();
    await c().waitUntilReady({ timeoutMs: 30_000 });
    const r = await c().fleetctl('m1', ['list-machines', '--no-legend', '--full']);
    expect(r.code, r.stderr).to.equal(0);
    expect(listedIds(r.stdout)).to.have.length(3);
  });

  it('is taken over by another FleetCluster object through its state files', () => {
    const other = FleetCluster.open('spec-fc');
    expect(other.machines.map((m) => [m.shortName, m.machineId, m.running])).to.deep.equal(
      c().machines.map((m) => [m.shortName, m.machineId, true]),
    );
    expect(other.etcdEndpoints).to.deep.equal(c().etcdEndpoints);
  });
});

describe('systemd-fixtures/cluster: FleetCluster on three etcd members', function () {
  this.timeout(120_000);
  let cluster: FleetCluster | undefined;
  let stateDir = '';
  let labStateDir = '';

  const c = (): FleetCluster => {
    if (cluster === undefined) throw new Error('the cluster did not start');
    return cluster;
  };

  before(async function () {
    this.timeout(120_000);
    cluster = await FleetCluster.start({ name: 'spec-fc3', machines: 1, etcdMembers: 3, agentTtl: '3s' });
    stateDir = cluster.stateDir;
    labStateDir = cluster.lab.stateDir;
  });

  after(async function () {
    this.timeout(60_000);
    await cluster?.destroy();
  });

  it('points fleetd at all three members and keeps working with one of them stopped', async () => {
    expect(c().etcdMembers).to.have.length(3);
    const conf = await c().exec('m1', ['cat', '/etc/fleet/fleet.conf']);
    expect(conf.stdout).to.include(`etcd_servers=${c().machineEtcdEndpoints.join(',')}`);
    await c().stopEtcd(0);
    expect(c().etcdMembers.map((m) => m.running)).to.deep.equal([false, true, true]);
    const r = await c().fleetctl('m1', ['list-machines', '--no-legend', '--full']);
    expect(r.code, r.stderr).to.equal(0);
    expect(listedIds(r.stdout)).to.deep.equal([c().machine('m1').machineId]);
    await c().startEtcd(0);
    expect(c().etcdMembers.map((m) => m.running)).to.deep.equal([true, true, true]);
  });

  it('leaves nothing behind when destroyed: no etcd, no machines, no state', async () => {
    const pids = c().machines.map((m) => m.nspawnPid);
    await c().destroy();
    cluster = undefined;
    expect(existsSync(stateDir)).to.equal(false);
    expect(existsSync(labStateDir)).to.equal(false);
    const leftovers = await Lab.findLeftovers('spec-fc3');
    expect(isClean(leftovers), JSON.stringify(leftovers)).to.equal(true);
    for (const pid of pids) if (pid !== undefined) expect(existsSync(`/proc/${pid}`)).to.equal(false);
  });
});
