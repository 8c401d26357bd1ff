import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { isFleetError } from '../../lib/errors.js';
import { EtcdRegistry } from '../../registry/etcd-registry.js';
import type { Leadership } from '../../registry/registry.js';
import { useEtcd, type EtcdHandle, type EtcdInstance } from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';

let prefixes = 0;

/** Engines' registries on one etcd under a fresh prefix, closed by `closeAll`. */
function engines(etcd: EtcdHandle<EtcdInstance>) {
  const prefix = `/fleet-election-${process.pid}-${++prefixes}/`;
  const made: EtcdRegistry[] = [];
  return {
    prefix,
    make: (): EtcdRegistry => {
      const r = new EtcdRegistry({ endpoints: [etcd.current.clientUrl], prefix, requestTimeoutMs: 500 });
      made.push(r);
      return r;
    },
    closeAll: async (): Promise<void> => {
      await Promise.all(made.splice(0).map((r) => r.close()));
    },
  };
}

const place = (unit: string, machine: string) => ({
  kind: 'put' as const,
  placement: { unit, machine, hash: `hash-${unit}`, desiredState: 'launched' as const },
});

/** True once `r` has tried to take the key and is waiting: lease, transaction, watch. */
function waiting(r: EtcdRegistry): boolean {
  return (r.stats().byOperation.campaign ?? 0) >= 3;
}

/** A separate node process that leads as `engine-crashy` until SIGKILLed. */
async function crashyLeader(endpoint: string, prefix: string, ttlSeconds: number): Promise<ChildProcess> {
  const module = new URL('../../registry/etcd-registry.js', import.meta.url).href;
  const code = `import { EtcdRegistry } from ${JSON.stringify(module)};
const r = new EtcdRegistry({ endpoints: [${JSON.stringify(endpoint)}], prefix: ${JSON.stringify(prefix)} });
await r.campaign('engine-crashy', ${ttlSeconds}, new AbortController().signal);
process.stdout.write('leading\\n');
setInterval(() => undefined, 1 << 30);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('leading')) resolve();
    });
    child.once('exit', (exitCode) => {
      reject(new Error(`leader process exited with ${exitCode}: ${stderr}`));
    });
  });
  return child;
}

describe('registry/etcd-election', function () {
  this.timeout(20_000);
  const etcd = useEtcd();
  let set: ReturnType<typeof engines>;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    set = engines(etcd);
  });
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    await set.closeAll();
  });

  for (const count of [2, 3]) {
    it(`lets exactly one of ${count} campaigning engines lead at a time, handing over on resign`, async () => {
      const rs = Array.from({ length: count }, () => set.make());
      const leaders: Leadership[] = [];
      const signal = new AbortController().signal;
      rs.forEach((r, i) => {
        void r.campaign(`engine-${i}`, 2, signal).then((l) => leaders.push(l));
      });
      for (let round = 1; round <= count; round++) {
        await eventually(() => expect(leaders).to.have.length(round));
        const leader = leaders[round - 1]!;
        const others = rs.filter((_, i) => !leaders.some((l) => l.candidate === `engine-${i}`));
        // Everyone else has tried and is waiting, so nobody else can be leading too.
        await eventually(() => expect(others.every(waiting)).to.equal(true));
        expect(leaders).to.have.length(round);
        expect(await rs[0]!.currentLeader()).to.equal(leader.candidate);
        await leader.resign();
      }
      expect(await rs[0]!.currentLeader()).to.equal(undefined);
    });
  }

  it('fails over to a waiting engine within TTL + 1 s when the leading process dies', async () => {
    const ttlSeconds = 2;
    children.push(await crashyLeader(etcd.current.clientUrl, set.prefix, ttlSeconds));
    const b = set.make();
    expect(await b.currentLeader()).to.equal('engine-crashy');
    const campaign = b.campaign('engine-b', ttlSeconds, new AbortController().signal);
    await eventually(() => expect(waiting(b)).to.equal(true));
    const killedAt = Date.now();
    children[0]!.kill('SIGKILL');
    const leadership = await campaign;
    const failoverMs = Date.now() - killedAt;
    expect(leadership.candidate).to.equal('engine-b');
    expect(failoverMs, `failover took ${failoverMs} ms`).to.be.below(ttlSeconds * 1000 + 1000);
  });

  it('rejects a deposed leader’s schedule write in etcd, writing nothing', async () => {
    const a = set.make();
    const b = set.make();
    const la = await a.campaign('engine-a', 5, new AbortController().signal);
    const client = etcd.current.client();
    const leaderKv = (await client.get(`${set.prefix}engine/leader`).exec()).kvs[0]!;
    await client.leaseClient.leaseRevoke({ ID: leaderKv.lease });
    const lb = await b.campaign('engine-b', 5, new AbortController().signal);
    expect(await b.applySchedule([place('a.service', 'm1')], lb)).to.equal(true);
    expect(await a.applySchedule([place('a.service', 'm2'), place('z.service', 'm2')], la)).to.equal(false);
    expect((await b.getPlacement('a.service'))?.machine).to.equal('m1');
    expect(await b.getPlacement('z.service')).to.equal(undefined);
    await eventually(() => expect(la.lost).to.equal(true));
    // An empty batch still answers whether leadership holds.
    expect(await b.applySchedule([], lb)).to.equal(true);
    expect(await a.applySchedule([], la)).to.equal(false);
  });

  it('fences in etcd by the leader key’s creation revision, before the old leader notices', async () => {
    const client = etcd.current.client();
    const key = `${set.prefix}engine/leader`;
    // Whether the old leader's watch notices first is a race; repeat until etcd itself refused.
    let refusedByEtcd = 0;
    for (let i = 0; i < 10 && refusedByEtcd === 0; i++) {
      const a = set.make();
      const la = await a.campaign('engine-a', 5, new AbortController().signal);
      const value = (await client.get(key).string())!;
      // Recreated with the same value: only the creation revision tells the two apart.
      await client.delete().key(key);
      await client.put(key).value(value);
      const believed = !la.lost;
      const sent = a.stats().byOperation.applySchedule ?? 0;
      expect(await a.applySchedule([place('a.service', 'm1')], la)).to.equal(false);
      if (believed && (a.stats().byOperation.applySchedule ?? 0) > sent) refusedByEtcd++;
      expect(await a.getPlacement('a.service')).to.equal(undefined);
      expect(la.lost).to.equal(true);
      await client.delete().key(key);
      await a.close();
    }
    expect(refusedByEtcd).to.equal(1);
  });

  it('tells the leader it lost when someone deletes the leader key, and lets another lead', async () => {
    const a = set.make();
    const la = await a.campaign('engine-a', 5, new AbortController().signal);
    let told = false;
    la.onLost(() => (told = true));
    await etcd.current.client().delete().key(`${set.prefix}engine/leader`);
    await eventually(() => expect(told).to.equal(true));
    const lb = await set.make().campaign('engine-b', 5, new AbortController().signal);
    expect(lb.candidate).to.equal('engine-b');
    expect(await a.applySchedule([place('a.service', 'm1')], la)).to.equal(false);
  });

  it('rejects a waiting campaign with REGISTRY_UNAVAILABLE when its registry closes', async () => {
    await set.make().campaign('engine-a', 5, new AbortController().signal);
    const b = set.make();
    const pending = b.campaign('engine-b', 5, new AbortController().signal).catch((e: unknown) => e);
    await eventually(() => expect(waiting(b)).to.equal(true));
    await b.close();
    const err = await pending;
    expect(isFleetError(err, 'REGISTRY_UNAVAILABLE'), String(err)).to.equal(true);
  });

  describe('when etcd stops answering', () => {
    const own = useEtcd({ name: 'election-faulty' });
    let faulty: ReturnType<typeof engines>;

    beforeEach(() => {
      faulty = engines(own);
    });
    afterEach(async () => {
      own.current.resume();
      await faulty.closeAll();
    });

    it('gives leadership up when its lease is not renewed within the TTL, and another leads after', async () => {
      const a = faulty.make();
      const la = await a.campaign('engine-a', 1, new AbortController().signal);
      let told = false;
      la.onLost(() => (told = true));
      own.current.pause();
      const pausedAt = Date.now();
      await eventually(() => expect(told).to.equal(true), { timeoutMs: 3_000 });
      expect(Date.now() - pausedAt).to.be.below(2_000);
      own.current.resume();
      const lb = await faulty.make().campaign('engine-b', 1, new AbortController().signal);
      expect(lb.candidate).to.equal('engine-b');
      expect(await a.applySchedule([place('a.service', 'm1')], la)).to.equal(false);
    });
  });
});
