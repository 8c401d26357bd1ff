import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { afterEach, before, describe, it } from 'mocha';
import { EtcdRegistry, type EtcdRegistryOptions } from '../../registry/etcd-registry.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitRecord } from '../helpers/registry-builders.js';

const run = promisify(execFile);
const PREFIX = '/fleet-auth/';

/**
 * etcd_username and etcd_password against a real etcd with authentication enabled
 * (`etcdctl auth enable`): the user may read and write only under the fleet prefix.
 */
describe('registry on etcd with authentication', function () {
  this.timeout(30_000);
  const etcd = useEtcd();
  const made: EtcdRegistry[] = [];

  async function etcdctl(...args: string[]): Promise<void> {
    await run('etcdctl', [`--endpoints=${etcd.current.clientUrl}`, ...args], { timeout: 10_000 });
  }

  function registry(options: Partial<EtcdRegistryOptions> = {}): EtcdRegistry {
    const r = new EtcdRegistry({
      endpoints: [etcd.current.clientUrl],
      prefix: PREFIX,
      requestTimeoutMs: 3000,
      ...options,
    });
    made.push(r);
    return r;
  }

  before(async () => {
    await etcdctl('user', 'add', 'root:root-secret');
    await etcdctl('user', 'add', 'fleet:fleet-secret');
    await etcdctl('role', 'add', 'fleet');
    await etcdctl('role', 'grant-permission', 'fleet', '--prefix=true', 'readwrite', PREFIX);
    await etcdctl('user', 'grant-role', 'fleet', 'fleet');
    await etcdctl('auth', 'enable');
  });

  afterEach(async () => {
    await Promise.all(made.splice(0).map((r) => r.close()));
  });

  it('submits, lists, watches, announces a machine on a lease and leads, as the fleet user', async () => {
    const r = registry({ auth: { username: 'fleet', password: 'fleet-secret' } });
    let changes = 0;
    const sub = await r.watchUnits(() => {
      changes++;
    });
    expect(await r.submitUnit(unitRecord('web.service'), 'launched')).to.deep.equal({ kind: 'created' });
    expect((await r.listUnits()).map((u) => u.unit.name)).to.deep.equal(['web.service']);
    await eventually(() => expect(changes).to.be.greaterThan(0));
    const presence = await r.announceMachine(machineRecord('m1'), 5);
    expect((await r.listMachines()).map((m) => m.id)).to.deep.equal(['m1']);
    const leadership = await r.campaign('m1', 5, new AbortController().signal);
    expect(leadership.lost).to.equal(false);
    await leadership.resign();
    await presence.close();
    await sub.close();
  });

  it('is refused without credentials, with a wrong password, and outside its prefix', async () => {
    await expectRejected(registry().listUnits());
    await expectRejected(registry({ auth: { username: 'fleet', password: 'wrong' } }).listUnits());
    const elsewhere = registry({ prefix: '/other/', auth: { username: 'fleet', password: 'fleet-secret' } });
    await expectRejected(elsewhere.listUnits());
  });
});

async function expectRejected(p: Promise<unknown>): Promise<void> {
  let failed = false;
  try {
    await p;
  } catch {
    failed = true;
  }
  expect(failed, 'the call succeeded').to.equal(true);
}
