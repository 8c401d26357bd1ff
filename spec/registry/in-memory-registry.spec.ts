import { expect } from 'chai';
import { describe, it } from 'mocha';

import { isFleetError } from '../../lib/errors.js';
import { InMemoryRegistry } from '../../registry/in-memory-registry.js';
import { registryContract } from '../contracts/registry.contract.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitRecord, unitState } from '../helpers/registry-builders.js';

registryContract('InMemoryRegistry', () => {
  const registry = new InMemoryRegistry();
  return Promise.resolve({
    registry,
    // One store, one object: a second fleetd's client is the same registry.
    peer: () => Promise.resolve(registry),
    cleanup: () => registry.close(),
  });
});

describe('registry/in-memory-registry: fault controls', () => {
  it('fails the next calls with a retryable REGISTRY_UNAVAILABLE', async () => {
    const r = new InMemoryRegistry();
    r.failNext(2);
    for (let i = 0; i < 2; i++) {
      const err: unknown = await r.listUnits().catch((e: unknown) => e);
      expect(isFleetError(err, 'REGISTRY_UNAVAILABLE') && err.retryable).to.equal(true);
    }
    expect(await r.listUnits()).to.deep.equal([]);
  });

  it('fails every call while partitioned and fires watches once healed', async () => {
    const r = new InMemoryRegistry();
    let fired = 0;
    await r.watchUnits(() => {
      fired++;
    });
    r.partition();
    const err: unknown = await r.submitUnit(unitRecord('a.service'), 'launched').catch((e: unknown) => e);
    expect(isFleetError(err, 'REGISTRY_UNAVAILABLE')).to.equal(true);
    expect(r.units.size).to.equal(0);
    r.heal();
    await eventually(() => expect(fired).to.equal(1));
  });

  it('expires a machine: record and states vanish and the presence is lost', async () => {
    const r = new InMemoryRegistry();
    const p = await r.announceMachine(machineRecord('m1'), 10);
    await p.publishUnitState(unitState('a.service', 'm1'));
    let lost = false;
    p.onLost(() => (lost = true));
    r.expireMachine('m1');
    expect(await r.listMachines()).to.deep.equal([]);
    expect(await r.listUnitStates()).to.deep.equal([]);
    await eventually(() => expect(lost).to.equal(true));
    const err: unknown = await p.publishUnitState(unitState('a.service', 'm1')).catch((e: unknown) => e);
    expect(isFleetError(err, 'REGISTRY_UNAVAILABLE')).to.equal(true);
  });

  it('expires the leader so that a waiting campaigner leads', async () => {
    const r = new InMemoryRegistry();
    const a = await r.campaign('a', 10, new AbortController().signal);
    const b = r.campaign('b', 10, new AbortController().signal);
    r.expireLeader();
    expect((await b).candidate).to.equal('b');
    expect(a.lost).to.equal(true);
    expect(await r.applySchedule([], a)).to.equal(false);
  });

  it('counts requests', async () => {
    const r = new InMemoryRegistry();
    await r.listUnits();
    await r.listMachines();
    expect(r.requestCount).to.equal(2);
  });
});
