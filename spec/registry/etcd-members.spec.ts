import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import type { MachinePresence, Subscription } from '../../registry/registry.js';
import { freeze, useEtcdCluster, type EtcdInstance } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitState } from '../helpers/registry-builders.js';

const MACHINES = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
let prefixes = 0;

/**
 * EtcdRegistry on a three-member etcd cluster: one member frozen, killed, or the etcd leader
 * killed, and every machine's presence (short TTLs, as in the lab) stays, with its fleetd busy
 * meanwhile. A presence lost here would make the engine move that machine's units.
 */
describe('registry/etcd-registry on a three-member etcd cluster', function () {
  this.timeout(90_000);
  const etcd = useEtcdCluster(3, { name: 'members' });
  const made: EtcdRegistry[] = [];
  let presences: MachinePresence[] = [];
  let observer: EtcdRegistry;
  let busy: AbortController;
  const subscriptions: Subscription[] = [];

  function make(prefix: string): EtcdRegistry {
    const r = new EtcdRegistry({ endpoints: etcd.current.endpoints, prefix });
    made.push(r);
    return r;
  }

  /** A fleetd's traffic besides keepalives: unit states published, machines listed. */
  async function work(r: EtcdRegistry, presence: MachinePresence, signal: AbortSignal): Promise<void> {
    for (let i = 0; !signal.aborted; i++) {
      await presence
        .publishUnitState(unitState(`u${i % 5}.service`, presence.machine))
        .then(() => r.listMachines())
        .catch(() => undefined);
      await delay(100);
    }
  }

  /** Every presence stays, sampled from another client every 100 ms for `holdMs`; returns the samples read. */
  async function keepsEveryPresence(holdMs: number): Promise<number> {
    const started = Date.now();
    let samples = 0;
    while (Date.now() - started < holdMs) {
      const lost = presences.filter((p) => p.lost).map((p) => p.machine);
      expect(lost, `presences lost ${Date.now() - started} ms into the fault`).to.deep.equal([]);
      try {
        const listed = (await observer.listMachines()).map((m) => m.id);
        expect(listed, `machines listed ${Date.now() - started} ms into the fault`).to.deep.equal(MACHINES);
        samples++;
      } catch (err) {
        // A read may fail while etcd elects a leader; a missing machine fails the test.
        if (err instanceof Error && err.name === 'AssertionError') throw err;
      }
      await delay(100);
    }
    return samples;
  }

  beforeEach(async () => {
    const prefix = `/fleet-members-${process.pid}-${++prefixes}/`;
    busy = new AbortController();
    presences = [];
    for (const id of MACHINES) {
      const r = make(prefix);
      const presence = await r.announceMachine(machineRecord(id), 3);
      presences.push(presence);
      subscriptions.push(await r.watchMachineSchedule(id, () => undefined));
      void work(r, presence, busy.signal);
    }
    observer = make(prefix);
    // Every lease's keepalive stream is open (the first keepalive goes at 1.2 s).
    await eventually(
      () =>
        expect(made.filter((r) => r !== observer).map((r) => r.stats().keepalives > 0)).to.not.include(false),
      { timeoutMs: 5_000 },
    );
  });

  afterEach(async () => {
    busy.abort();
    await Promise.all(subscriptions.splice(0).map((s) => s.close()));
    await Promise.all(made.splice(0).map((r) => r.close()));
    for (const member of etcd.current.members) {
      member.resume();
      if (!member.running) await member.restart();
    }
  });

  /** The member that leads, once one does (after a kill, the others elect one). */
  function leader(): Promise<EtcdInstance> {
    return eventually(async () => {
      const l = await etcd.current.leader();
      if (l === undefined) throw new Error('no etcd member leads');
      return l;
    });
  }

  async function followers(): Promise<EtcdInstance[]> {
    const current = await leader();
    return etcd.current.members.filter((m) => m !== current);
  }

  it('keeps every presence while a follower member is frozen, one after the other', async () => {
    for (const member of await followers()) {
      await freeze(member);
      // Two TTLs: a keepalive stream on the frozen member goes unanswered and moves elsewhere.
      expect(await keepsEveryPresence(6_000)).to.be.at.least(3);
      member.resume();
    }
  });

  it('keeps every presence when the etcd leader member is killed, twice, and when it is back', async () => {
    for (let round = 0; round < 2; round++) {
      const killed = await leader();
      await killed.kill();
      expect(await keepsEveryPresence(6_000)).to.be.at.least(3);
      await killed.restart();
      expect(await keepsEveryPresence(2_000)).to.be.at.least(3);
    }
  });
});
