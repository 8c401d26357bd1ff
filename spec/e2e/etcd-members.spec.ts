import { expect } from 'chai';
import { describe, it, afterEach } from 'mocha';
import { setTimeout as delay } from 'node:timers/promises';

import { runCommand } from '../../systemd-fixtures/lab/run-command.js';
import { figure, seconds, serviceFile, useE2eCluster, type UnitExpectation } from './e2e-harness.js';

/** How long each member stays down while the cluster is watched and used. */
const DOWN_MS = 10_000;

interface MemberStatus {
  readonly Endpoint: string;
  readonly Status: { readonly header: { readonly member_id: number }; readonly leader: number };
}

/**
 * fleet-ts on a three-member etcd cluster: one member killed (the etcd leader, then a follower)
 * and the cluster keeps working. Machines stay listed, running units keep their main PIDs, and
 * units can be started, stopped and destroyed while the member is down and after it is back.
 */
describe('e2e: three machines on a three-member etcd cluster, one member killed', function () {
  this.timeout(120_000);
  const {
    e,
    c,
    units: dir,
  } = useE2eCluster(
    {
      name: 'e2e-e3',
      machines: 3,
      etcdMembers: 3,
      agentTtl: '3s',
      fleetdConfig: ['engine_reconcile_interval=0.6'],
    },
    { ready: 'cluster of 3 machines on 3 etcd members', file: 'etcd member' },
  );
  const once = (names: readonly string[]): Record<string, UnitExpectation> =>
    Object.fromEntries(names.map((n) => [n, { state: 'active/running' }]));

  /** The index of the etcd member that leads, per `etcdctl endpoint status`. */
  async function etcdLeader(): Promise<number> {
    const running = c().etcdMembers.filter((m) => m.running);
    const r = await runCommand([
      'etcdctl',
      `--endpoints=${running.map((m) => m.clientUrl).join(',')}`,
      'endpoint',
      'status',
      '-w',
      'json',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    const statuses = JSON.parse(r.stdout) as MemberStatus[];
    const leader = statuses.find((s) => s.Status.header.member_id === s.Status.leader);
    if (leader === undefined) throw new Error(`no etcd member leads: ${r.stdout}`);
    return c().etcdMembers.findIndex((m) => m.clientUrl === leader.Endpoint);
  }

  async function killMember(which: 'leader' | 'follower'): Promise<void> {
    const names = ['a', 'b', 'c', 'd'].map((x) => `${which}-${x}.service`);
    await e().ok(['start', ...(await Promise.all(names.map((n) => dir().write(n, serviceFile()))))]);
    await e().settle(once(names));
    const before = await e().mainPids(names);

    const leader = await etcdLeader();
    const member = which === 'leader' ? leader : (leader + 1) % 3;
    const registry = e().registry();
    const killed = Date.now();
    await c().stopEtcd(member, 0);

    // Watch the machines for a while: none may drop out of the list (which would move its units).
    let samples = 0;
    let firstAnswer: number | undefined;
    while (Date.now() - killed < DOWN_MS) {
      try {
        const listed = await registry.listMachines();
        firstAnswer ??= Date.now() - killed;
        expect(
          listed.map((m) => m.id).sort(),
          `machines ${seconds(Date.now() - killed)} after the kill`,
        ).to.deep.equal(
          c()
            .machines.map((m) => m.machineId)
            .sort(),
        );
        samples++;
      } catch (err) {
        // etcd electing a new leader may refuse a request or two; a missing machine fails the test.
        if (err instanceof Error && err.name === 'AssertionError') throw err;
      }
      await delay(100);
    }
    expect(samples, 'machine lists read while the member was down').to.be.greaterThan(0);
    expect([...(await e().mainPids(names))], 'running units untouched').to.deep.equal([...before]);

    // New units are placed and run; a unit stops and is destroyed, all with the member down.
    const fresh = [`${which}-new-1.service`, `${which}-new-2.service`];
    const started = Date.now();
    await e().ok(['start', ...(await Promise.all(fresh.map((n) => dir().write(n, serviceFile()))))], 'm2');
    await e().settle(once([...names, ...fresh]));
    const startTook = Date.now() - started;
    await e().ok(['stop', fresh[0]!], 'm3');
    await e().settle({ [fresh[0]!]: { state: 'inactive/dead' } });
    await e().ok(['destroy', fresh[0]!]);
    await e().settle({ [fresh[0]!]: { state: 'absent' } });
    figure(
      `etcd ${which} member killed: machines listed in ${samples} samples over ${seconds(DOWN_MS)} (first answer after ${seconds(firstAnswer ?? 0)}); new units started in ${seconds(startTook)}`,
    );

    await c().startEtcd(member);
    await c().waitUntilReady({ timeoutMs: 30_000 });
    await e().settle(once([...names, fresh[1]!]));
    expect(
      [...(await e().mainPids(names))],
      'running units untouched after the member is back',
    ).to.deep.equal([...before]);
    await e().destroy([...names, ...fresh]);
    await e().settle(Object.fromEntries([...names, ...fresh].map((n) => [n, { state: 'absent' }])));
  }

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    this.timeout(60_000);
    await c().startEtcd();
    await c().waitUntilReady({ timeoutMs: 30_000 });
  });

  it('keeps working when the etcd leader member is killed, and takes it back', async () => {
    await killMember('leader');
  });

  it('keeps working when an etcd follower member is killed, and takes it back', async () => {
    await killMember('follower');
  });
});
