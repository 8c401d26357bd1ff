import { expect } from 'chai';
import { describe, it, before, after, afterEach } from 'mocha';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';

import { EtcdRegistry } from '../../registry/etcd-registry.js';
import type { UnitRecord } from '../../registry/model.js';
import { installPackage, packagedLab } from '../../systemd-fixtures/cluster/fleetd-install.js';
import type { LabMachine } from '../../systemd-fixtures/lab/lab.js';
import { formatProblem } from '../../unit/problems.js';
import { parseUnit } from '../../unit/unit.js';
import { startEtcd, type EtcdInstance } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

const ECHO_PORT = 7001;
const GREET_PORT = 7002;

/**
 * A socket-activated server from what every machine has in /usr: node serving the listening
 * socket systemd hands over as fd 3 (Accept=no), answering each connection with its hostname.
 */
const ECHO_SERVICE = [
  '[Unit]',
  'Description=socket-activated echo (fleet-ts socket lab)',
  '',
  '[Service]',
  `ExecStart=/usr/bin/node -e "require('net').createServer((c) => c.end('echo-from-' + require('os').hostname())).listen({ fd: 3 })"`,
  '',
].join('\n');
const ECHO_SOCKET = `[Socket]\nListenStream=${ECHO_PORT}\n`;
/** One instance per connection: it writes its own unit name (%n) and host (%H) to the connection. */
const GREET_TEMPLATE = '[Service]\nExecStart=/bin/echo greet %n on %H\nStandardOutput=socket\n';
/** Pinned to the echo pair's machine, so that its template follows it there too. */
const GREET_SOCKET = `[Socket]\nListenStream=${GREET_PORT}\nAccept=yes\n\n[X-Fleet]\nMachineOf=echo.socket\n`;

function record(name: string, text: string): UnitRecord {
  const r = parseUnit(name, text);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('; '));
  const u = r.value;
  return {
    name: u.name,
    hash: u.hash,
    options: u.file.options.map((o) => ({ section: o.section, name: o.name, value: o.value })),
    fleet: u.fleet,
  };
}

function fleetConf(etcdUrl: string, prefix: string): string {
  return [
    '# fleet.conf written by spec/e2e/socket-activation.spec.ts',
    `etcd_servers=${etcdUrl}`,
    `etcd_key_prefix=${prefix}`,
    'agent_ttl=3s',
    'engine_reconcile_interval=1',
    '',
  ].join('\n');
}

/** Connects from the host, reads until the server closes, within `timeoutMs`. */
function ask(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let data = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => {
      socket.destroy(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    });
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => {
      resolve(data.trim());
    });
    socket.on('error', reject);
  });
}

/**
 * Socket activation on real systemd: a two-machine lab running fleetd as a service, etcd on the
 * host's bridge address. The test writes to the registry directly (as the API would) and talks
 * to the machines from the host over TCP.
 */
describe('e2e: socket activation in a lab of two machines running fleetd', function () {
  this.timeout(60_000);
  const lab = packagedLab('sock', 2);
  const prefix = `/sock-${randomBytes(4).toString('hex')}/`;
  let etcd: EtcdInstance | undefined;
  let registry: EtcdRegistry | undefined;
  let failed = false;

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
  /** `m1 active/listening` for every agent's report of `unit`. */
  const statesOf = async (unit: string): Promise<string[]> =>
    (await reg().listUnitStates({ unit })).map(
      (s) => `${machineById(s.machine).name} ${s.activeState}/${s.subState}`,
    );
  /** The machine both units are placed on; fails while they are not placed together. */
  const pairMachine = async (a: string, b: string): Promise<LabMachine> => {
    const [pa, pb] = await Promise.all([reg().getPlacement(a), reg().getPlacement(b)]);
    if (pa === undefined || pb === undefined) throw new Error(`${a} or ${b} is not placed`);
    expect(pb.machine, `${b} placed with ${a}`).to.equal(pa.machine);
    return machineById(pa.machine);
  };

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
    await eventually(async () => expect(await reg().listMachines()).to.have.length(2), {
      timeoutMs: 30_000,
      intervalMs: 100,
      description: 'both machines to be announced',
    });
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
        // A failed run keeps the journals: journalctl -D /var/lib/fleet-ts-lab/sock/machines/*/root/var/log/journal
        await lab.destroy({ keepJournals: failed });
      } finally {
        await etcd?.stop();
      }
    }
  });

  it('places echo.socket and echo.service together; the socket listens, the service waits', async () => {
    const submitted = Date.now();
    await reg().submitUnit(record('echo.service', ECHO_SERVICE), 'inactive');
    await reg().submitUnit(record('echo.socket', ECHO_SOCKET), 'launched');
    const m = await eventually(
      async () => {
        const placed = await pairMachine('echo.socket', 'echo.service');
        expect(await statesOf('echo.socket')).to.deep.equal([`${placed.name} active/listening`]);
        expect(await statesOf('echo.service')).to.deep.equal([`${placed.name} inactive/dead`]);
        return placed;
      },
      { timeoutMs: 20_000, intervalMs: 50, description: 'the pair to be placed and reported' },
    );
    console.log(
      `      submit -> socket listening, service loaded: ${Date.now() - submitted} ms (on ${m.name})`,
    );
    expect((await reg().getPlacement('echo.service'))?.desiredState).to.equal('loaded');
    expect(await sh(m, 'systemctl is-active echo.service || true')).to.equal('inactive');
    expect(await sh(m, 'systemctl is-active echo.socket')).to.equal('active');
  });

  it('answers a connection from the service systemd activated, which the agent leaves running', async () => {
    const m = await pairMachine('echo.socket', 'echo.service');
    const asked = Date.now();
    expect(await ask(m.ip, ECHO_PORT)).to.equal(`echo-from-${m.name}`);
    console.log(`      first connection answered in ${Date.now() - asked} ms (node started by systemd)`);
    await eventually(
      async () => expect(await statesOf('echo.service')).to.deep.equal([`${m.name} active/running`]),
      { timeoutMs: 10_000, intervalMs: 50, description: 'echo.service to be reported running' },
    );
    // While the service holds the listening socket, systemd reports the socket running.
    await eventually(
      async () => expect(await statesOf('echo.socket')).to.deep.equal([`${m.name} active/running`]),
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const pid = await sh(m, 'systemctl show -p MainPID --value echo.service');
    // Make the agent reconcile after the activation: a unit pinned to this machine.
    await reg().submitUnit(
      record(
        'marker.service',
        `[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nMachineID=${m.machineId}\n`,
      ),
      'launched',
    );
    await eventually(
      async () => expect(await statesOf('marker.service')).to.deep.equal([`${m.name} active/running`]),
      { timeoutMs: 10_000, intervalMs: 50, description: 'marker.service to run' },
    );
    expect(await sh(m, 'systemctl show -p MainPID --value echo.service')).to.equal(pid);
    expect(await ask(m.ip, ECHO_PORT)).to.equal(`echo-from-${m.name}`);
    await reg().destroyUnit('marker.service');
  });

  it('starts one instance of greet@.service per connection to an Accept=yes socket', async () => {
    await reg().submitUnit(record('greet@.service', GREET_TEMPLATE), 'inactive');
    await reg().submitUnit(record('greet.socket', GREET_SOCKET), 'launched');
    const m = await eventually(
      async () => {
        const placed = await pairMachine('greet.socket', 'greet@.service');
        expect(await statesOf('greet.socket')).to.deep.equal([`${placed.name} active/listening`]);
        return placed;
      },
      { timeoutMs: 20_000, intervalMs: 50, description: 'the Accept=yes pair to be placed' },
    );
    expect(await sh(m, 'test -f /run/fleet/units/greet@.service && echo present')).to.equal('present');
    // A template has no state of its own in systemd; the agent reports none.
    expect(await statesOf('greet@.service')).to.deep.equal([]);
    const answers = [await ask(m.ip, GREET_PORT), await ask(m.ip, GREET_PORT)];
    const instances = answers.map((a) => /^greet (greet@\S+\.service) on (\S+)$/.exec(a));
    for (const match of instances) {
      expect(match, `answer ${answers.join(' | ')}`).to.not.equal(null);
      expect(match?.[2]).to.equal(m.name);
    }
    expect(new Set(instances.map((x) => x?.[1])).size, 'distinct instances').to.equal(2);
    expect(await sh(m, 'systemctl show -p NAccepted --value greet.socket')).to.equal('2');
    const started = await sh(
      m,
      "journalctl --no-pager -o cat -u 'greet@*' | grep -c '^Started greet@' || true",
    );
    expect(Number(started)).to.equal(2);
  });

  it('moves both pairs together when their machine is killed', async () => {
    const m = await pairMachine('echo.socket', 'echo.service');
    const other = lab.machines.find((x) => x.machineId !== m.machineId);
    if (other === undefined) throw new Error('two machines expected');
    expect((await pairMachine('greet.socket', 'greet@.service')).name).to.equal(m.name);
    const killed = Date.now();
    await lab.kill(m.index);
    await eventually(
      async () => {
        const placed = await pairMachine('echo.socket', 'echo.service');
        expect(placed.name).to.equal(other.name);
        expect(await statesOf('echo.socket')).to.deep.equal([`${other.name} active/listening`]);
        expect(await statesOf('echo.service')).to.deep.equal([`${other.name} inactive/dead`]);
        const greet = await pairMachine('greet.socket', 'greet@.service');
        expect(greet.name).to.equal(other.name);
        expect(await statesOf('greet.socket')).to.deep.equal([`${other.name} active/listening`]);
      },
      { timeoutMs: 30_000, intervalMs: 100, description: 'both pairs to listen on the other machine' },
    );
    console.log(`      machine killed -> both pairs listening on ${other.name}: ${Date.now() - killed} ms`);
    expect(await ask(other.ip, ECHO_PORT)).to.equal(`echo-from-${other.name}`);
    expect(await ask(other.ip, GREET_PORT)).to.match(
      new RegExp(`^greet greet@\\S+\\.service on ${other.name}$`),
    );
  });

  it('unloads the pairs: the inactive service goes with its socket, the template is unlinked', async () => {
    const m = await pairMachine('echo.socket', 'echo.service');
    await reg().setDesiredState('echo.socket', 'inactive');
    await reg().destroyUnit('greet.socket');
    await reg().destroyUnit('greet@.service');
    await eventually(
      async () => {
        expect(await reg().getPlacement('echo.service')).to.equal(undefined);
        expect(
          await sh(
            m,
            'ls /run/fleet/units/ /run/systemd/system/ 2>/dev/null | grep -cE "echo|greet" || true',
          ),
        ).to.equal('0');
        expect(await statesOf('echo.socket')).to.deep.equal([]);
      },
      { timeoutMs: 15_000, intervalMs: 100, description: 'the files, links and states to go' },
    );
    expect(await sh(m, 'systemctl is-active echo.socket echo.service || true')).to.equal(
      'inactive\ninactive',
    );
  });
});
