import { expect } from 'chai';
import { describe, it, beforeEach, afterEach } from 'mocha';

import { Engine, type EngineConfig } from '../../engine/engine.js';
import { systemClock } from '../../lib/clock.js';
import { MemoryLogger } from '../../lib/logger.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import type { MachinePresence } from '../../registry/registry.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitRecord } from '../helpers/registry-builders.js';

/** Engines against a real etcd, each with its own client as separate fleetds would have. */
describe('engine/engine against real etcd', function () {
  this.timeout(30_000);
  const etcd = useEtcd();
  let prefix: string;
  let registries: EtcdRegistry[];
  let engines: Engine[];
  let presences: MachinePresence[];
  const ttl = 2;
  const config: EngineConfig = { reconcileIntervalMs: 2000, leaseTtlSeconds: ttl };
  let n = 0;

  beforeEach(() => {
    prefix = `/engine-test-${n++}/`;
    registries = [];
    engines = [];
    presences = [];
  });

  afterEach(async () => {
    for (const e of engines) await e.close().catch(() => undefined);
    for (const r of registries) await r.close().catch(() => undefined);
  });

  function client(): EtcdRegistry {
    const r = new EtcdRegistry({ endpoints: etcd.current.endpoints, prefix });
    registries.push(r);
    return r;
  }

  function startEngine(machineId: string, registry: EtcdRegistry = client()): Engine {
    const engine = new Engine({
      machineId,
      registry,
      clock: systemClock,
      logger: new MemoryLogger(),
      config,
    });
    engine.start();
    engines.push(engine);
    return engine;
  }

  async function machines(ids: string[]): Promise<EtcdRegistry> {
    const r = client();
    for (const id of ids) presences.push(await r.announceMachine(machineRecord(id), 10));
    return r;
  }

  for (const count of [2, 3]) {
    it(`lets exactly one of ${count} engines lead`, async () => {
      const all = Array.from({ length: count }, (_, i) => startEngine(`m${i + 1}`));
      await eventually(() => expect(all.filter((e) => e.leading)).to.have.length(1), { timeoutMs: 5000 });
      // And it stays one: no second leader appears over a few lease renewals.
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline) {
        expect(all.filter((e) => e.leading).length).to.be.at.most(1);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    });
  }

  it("hands leadership over within lease TTL + 1 s when the leader's etcd client dies, and the new leader places units", async () => {
    const store = await machines(['m1', 'm2']);
    const registryA = client();
    const a = startEngine('m1', registryA);
    await eventually(() => expect(a.leading).to.equal(true));
    const b = startEngine('m2');
    await store.submitUnit(unitRecord('before.service'), 'launched');
    await eventually(async () => expect(await store.getPlacement('before.service')).to.not.equal(undefined));

    // The leader's connection to etcd dies without resigning (as when its fleetd is killed).
    const died = Date.now();
    await registryA.crash();
    await eventually(() => expect(b.leading).to.equal(true), { timeoutMs: (ttl + 1) * 1000 + 500 });
    const tookOver = Date.now() - died;
    expect(tookOver).to.be.at.most((ttl + 1) * 1000);

    await store.submitUnit(unitRecord('after.service'), 'launched');
    await eventually(async () => expect(await store.getPlacement('after.service')).to.not.equal(undefined));
  });

  it('moves the units of a machine whose lease expired', async () => {
    const store = client();
    const p1 = await store.announceMachine(machineRecord('m1'), 1);
    presences.push(await store.announceMachine(machineRecord('m2'), 10));
    startEngine('m2');
    await store.submitUnit(unitRecord('x.service'), 'launched');
    await eventually(async () => expect((await store.getPlacement('x.service'))?.machine).to.equal('m1'));
    await p1.close();
    await eventually(async () => expect((await store.getPlacement('x.service'))?.machine).to.equal('m2'));
  });

  it('records an unplaceable reason in etcd for the API to show', async () => {
    const store = await machines(['m1']);
    startEngine('m1');
    await store.submitUnit(unitRecord('pinned.service', ['MachineID=nowhere']), 'launched');
    await eventually(async () => expect(await store.getUnplaceable('pinned.service')).to.match(/MachineID/));
  });
});
