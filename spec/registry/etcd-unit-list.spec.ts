import { expect } from 'chai';
import { after, describe, it } from 'mocha';
import { mapLimit } from '../../lib/concurrency.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import { PAGE_KEYS } from '../../registry/etcd-units.js';
import type { StoredUnit } from '../../registry/model.js';
import { useEtcd } from '../helpers/etcd-harness.js';
import { unitRecord } from '../helpers/registry-builders.js';

/** What a fresh registry (no earlier read to build on) lists: the reference. */
async function fresh(endpoint: string, prefix: string): Promise<StoredUnit[]> {
  const r = new EtcdRegistry({ endpoints: [endpoint], prefix });
  try {
    return await r.listUnits();
  } finally {
    await r.close();
  }
}

describe('registry/etcd-units listUnits (paged, then only what changed)', function () {
  this.timeout(60_000);
  const etcd = useEtcd({ name: 'unit-list' });
  const made: EtcdRegistry[] = [];
  after(async () => {
    await Promise.all(made.map((r) => r.close()));
  });

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
