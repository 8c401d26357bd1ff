import { expect } from 'chai';
import { after, describe, it } from 'mocha';
import { mapLimit } from '../../lib/concurrency.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { keyOf, valueOf } from '../../registry/etcd-connection.js';
import { PAGE_KEYS, readPrefix } from '../../registry/etcd-units.js';
import type { StoredUnit } from '../../registry/model.js';
import { useEtcd } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { machineRecord, unitRecord, unitState } from '../helpers/registry-builders.js';

/** What a fresh registry (no earlier read to build on) lists: the reference. */
async function fresh(endpoint: string, prefix: string): Promise<StoredUnit[]> {
  const r = new EtcdRegistry({ endpoints: [endpoint], prefix });
  try {
    return await r.listUnits();
  } finally {
    await r.close();
  }
}

describe('registry/etcd-units paged reads', function () {
  this.timeout(60_000);
  const etcd = useEtcd({ name: 'unit-list' });
  const made: EtcdRegistry[] = [];
  after(async () => {
    await Promise.all(made.map((r) => r.close()));
  });

  describe('listUnits (paged, then only what changed)', () => {
    it('lists more units than one page and than one gRPC message holds, then follows changes', async () => {
      const prefix = `/unit-list-${process.pid}/`;
      const endpoint = etcd.current.clientUrl;
      const reader = new EtcdRegistry({ endpoints: [endpoint], prefix });
      const writer = new EtcdRegistry({ endpoints: [endpoint], prefix, requestTimeoutMs: 10_000 });
      made.push(reader, writer);
      // Long records: 2.5 pages of about 2 kB each (5 MB in all, over gRPC's 4 MiB limit).
      const padding = 'x'.repeat(2000);
      const count = Math.floor(PAGE_KEYS * 2.5);
      const names = Array.from({ length: count }, (_, i) => `u-${String(i).padStart(5, '0')}.service`);
      await mapLimit(names, 64, (name) =>
        writer.submitUnit(unitRecord(name, [], `/bin/sleep ${padding}`), 'launched'),
      );

      const all = await reader.listUnits();
      expect(all.map((s) => s.unit.name)).to.deep.equal(names);
      expect(all.every((s) => s.desiredState === 'launched')).to.equal(true);

      // Changes after the first read: a new unit, a destroyed one, a replaced one, a desired state.
      await writer.submitUnit(unitRecord('a-new.service'), 'loaded');
      await writer.destroyUnit(names[10] ?? '');
      await writer.submitUnit(unitRecord(names[20] ?? '', [], '/bin/true'), 'launched', { replace: true });
      await writer.setDesiredState(names[30] ?? '', 'inactive');
      const before = reader.stats().byOperation.listUnits ?? 0;
      const next = await reader.listUnits();
      expect(reader.stats().byOperation.listUnits ?? 0).to.equal(before + 3); // the delta, then keys only of unit/ and desired/
      expect(next).to.deep.equal(await fresh(endpoint, prefix));
      expect(next.map((s) => s.unit.name))
        .to.include('a-new.service')
        .and.not.include(names[10]);
      expect(next.find((s) => s.unit.name === names[30])?.desiredState).to.equal('inactive');

      // Nothing changed: one small request, the same answer.
      const again = await reader.listUnits();
      expect(reader.stats().byOperation.listUnits ?? 0).to.equal(before + 4);
      expect(again).to.deep.equal(next);

      // Only additions and changes: one request, no keys-only read.
      await writer.submitUnit(unitRecord('b-new.service'), 'launched');
      await writer.setDesiredState(names[40] ?? '', 'loaded');
      const third = await reader.listUnits();
      expect(reader.stats().byOperation.listUnits ?? 0).to.equal(before + 5);
      expect(third).to.deep.equal(await fresh(endpoint, prefix));
    });
  });

  describe('readPrefix and the lists read with it (paged at one revision)', () => {
    it('reads every key of a prefix in pages, in key order, and nothing beside it', async () => {
      const prefix = `/read-prefix-${process.pid}/`;
      const r = new EtcdRegistry({ endpoints: [etcd.current.clientUrl], prefix });
      made.push(r);
      const conn = r['conn'];
      const keys = Array.from({ length: 10 }, (_, i) => `${prefix}p/k${String(i).padStart(2, '0')}`);
      await Promise.all(keys.map((k) => conn.client.put(k).value(`v-${k}`)));
      await conn.client.put(`${prefix}q/outside`).value('x');
      await conn.client.put(`${prefix}p`).value('not under p/');

      const before = r.stats().requests;
      const kvs = await readPrefix(conn, 'test', `${prefix}p/`, 3);
      expect(kvs.map(keyOf)).to.deep.equal(keys);
      expect(kvs.map(valueOf)).to.deep.equal(keys.map((k) => `v-${k}`));
      expect(r.stats().requests - before, 'pages of 3 for 10 keys').to.equal(4);
      // A prefix within one page is one request; an empty one too.
      expect(await readPrefix(conn, 'test', `${prefix}p/`)).to.have.length(10);
      expect(await readPrefix(conn, 'test', `${prefix}none/`)).to.deep.equal([]);
      expect(r.stats().requests - before).to.equal(6);
    });

    it('lists unit states over more than one page', async () => {
      const prefix = `/read-prefix-states-${process.pid}/`;
      const r = new EtcdRegistry({ endpoints: [etcd.current.clientUrl], prefix, requestTimeoutMs: 10_000 });
      made.push(r);
      const presence = await r.announceMachine(machineRecord('m1'), 30);
      const names = Array.from(
        { length: PAGE_KEYS + 100 },
        (_, i) => `s-${String(i).padStart(5, '0')}.service`,
      );
      await mapLimit(names, 64, (name) => presence.publishUnitState(unitState(name, 'm1')));
      const before = r.stats().byOperation.listUnitStates ?? 0;
      const states = await r.listUnitStates();
      expect(states.map((s) => s.unit)).to.deep.equal(names);
      expect((r.stats().byOperation.listUnitStates ?? 0) - before, 'two pages').to.equal(2);
      expect((await r.listUnitStates({ machine: 'm1' })).length).to.equal(names.length);
      expect(await r.listUnitStates({ unit: names[5] ?? '' })).to.have.length(1);
    });
  });
});
