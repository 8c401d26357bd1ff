import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import { afterEach, describe, it } from 'mocha';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { KEEPALIVES_PER_TTL } from '../../registry/etcd-lease.js';
import type { Leadership } from '../../registry/registry.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord } from '../helpers/registry-builders.js';

/** etcd's own count of LeaseKeepAlive messages received and LeaseKeepAlive streams started. */
async function keepaliveMetrics(clientUrl: string): Promise<{ messages: number; streams: number }> {
  const text = await (await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const sum = (metric: string): number =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${metric}{`) && line.includes('grpc_method="LeaseKeepAlive"'))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return { messages: sum('grpc_server_msg_received_total'), streams: sum('grpc_server_started_total') };
}

describe('registry/etcd-lease', function () {
  this.timeout(60_000);
  // Its own etcd: the counts must see nobody else's keepalives.
  const etcd = useEtcd({ name: 'lease-cadence' });
  const made: EtcdRegistry[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((r) => r.close()));
  });

  it('keeps a presence and a leadership alive with one keepalive per TTL/2.5 each, and a waiting candidate with none', async () => {
    const ttlSeconds = 2;
    const intervalMs = (ttlSeconds * 1000) / KEEPALIVES_PER_TTL;
    const prefix = `/fleet-lease-${process.pid}/`;
    const make = (): EtcdRegistry => {
      const r = new EtcdRegistry({ endpoints: [etcd.current.clientUrl], prefix });
      made.push(r);
      return r;
    };
    // Wired as fleetd wires them: every machine announces itself and campaigns.
    const leader = make();
    const follower = make();
    const presences = [
      await leader.announceMachine(machineRecord('m1'), ttlSeconds),
      await follower.announceMachine(machineRecord('m2'), ttlSeconds),
    ];
    const leadership = await leader.campaign('m1', ttlSeconds, new AbortController().signal);
    let followerLeads: Leadership | undefined;
    void follower
      .campaign('m2', ttlSeconds, new AbortController().signal)
      .then((l) => (followerLeads = l))
      .catch(() => undefined);
    // The follower has tried (lease, transaction, lease given back) and is watching.
    await eventually(() => expect(follower.stats().byOperation.campaign ?? 0).to.be.at.least(3));
    await delay(intervalMs);

    const before = { etcd: await keepaliveMetrics(etcd.current.clientUrl), at: Date.now() };
    const sentBefore = [leader.stats().keepalives, follower.stats().keepalives];
    const requestsBefore = [leader.stats().requests, follower.stats().requests];
    await delay(12_000);
    const sent = [leader.stats().keepalives - sentBefore[0]!, follower.stats().keepalives - sentBefore[1]!];
    const requests = [
      leader.stats().requests - requestsBefore[0]!,
      follower.stats().requests - requestsBefore[1]!,
    ];
    const after = { etcd: await keepaliveMetrics(etcd.current.clientUrl), at: Date.now() };

    // Per lease, one keepalive per interval: a late timer may lose one or two over the window, and
    // the window's edges may add one. etcd3's own cadence (TTL/3) would be 18 a lease here.
    const perLease = (after.at - before.at) / intervalMs;
    const low = Math.floor(perLease) - 2;
    const high = Math.ceil(perLease) + 1;
    expect(high, 'bounds that tell TTL/2.5 from TTL/3').to.be.below(
      (after.at - before.at) / ((ttlSeconds * 1000) / 3),
    );
    const counts = `leader sent ${sent[0]}, follower ${sent[1]}; etcd received ${after.etcd.messages - before.etcd.messages}; ${perLease.toFixed(1)} intervals`;
    expect(sent[0], counts).to.be.within(2 * low, 2 * high);
    expect(sent[1], counts).to.be.within(low, high);
    // What etcd counted is what was sent, give or take one in flight at each edge per lease.
    expect(after.etcd.messages - before.etcd.messages, counts).to.be.within(
      sent[0]! + sent[1]! - 3,
      sent[0]! + sent[1]! + 3,
    );
    // One persistent stream per lease, opened before the window: no stream per keepalive.
    expect(after.etcd.streams - before.etcd.streams, 'keepalive streams opened').to.equal(0);
    // Idle: nothing but keepalives.
    expect(requests, 'requests besides keepalives').to.deep.equal([0, 0]);

    // All of it stayed alive, and the follower still waits.
    expect(leadership.lost).to.equal(false);
    expect(presences.map((p) => p.lost)).to.deep.equal([false, false]);
    expect(followerLeads).to.equal(undefined);
    expect(await follower.currentLeader()).to.equal('m1');
    expect((await follower.listMachines()).map((m) => m.id)).to.deep.equal(['m1', 'm2']);
  });
});
