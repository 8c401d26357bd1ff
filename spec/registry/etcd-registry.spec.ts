import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { isFleetError } from '../../lib/errors.js';
import { EtcdRegistry, type EtcdRegistryOptions } from '../../registry/etcd-registry.js';
import { EtcdPresence } from '../../registry/etcd-presence.js';
import type { Leadership } from '../../registry/registry.js';
import { registryContract } from '../contracts/registry.contract.js';
import {
  freeze,
  useEtcd,
  type EtcdHandle,
  type EtcdInstance,
} from '../../systemd-fixtures/etcd/etcd-harness.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { machineRecord, unitRecord, unitState } from '../helpers/registry-builders.js';

let prefixes = 0;

/** Registries on one etcd under a fresh prefix (so each test starts empty), closed by `closeAll`. */
function registries(etcd: EtcdHandle<EtcdInstance>, options: Partial<EtcdRegistryOptions> = {}) {
  const prefix = `/fleet-registry-${process.pid}-${++prefixes}/`;
  const made: EtcdRegistry[] = [];
  return {
    prefix,
    make: (): EtcdRegistry => {
      const r = new EtcdRegistry({
        endpoints: [etcd.current.clientUrl],
        prefix,
        requestTimeoutMs: 1500,
        ...options,
      });
      made.push(r);
      return r;
    },
    closeAll: async (): Promise<void> => {
      await Promise.all(made.splice(0).map((r) => r.close()));
    },
  };
}

/** Runs `await fn()` and returns what it threw. */
async function failure(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

function counter(): { calls: number; readonly listener: () => void } {
  const c = {
    calls: 0,
    listener: () => {
      c.calls++;
    },
  };
  return c;
}

/**
 * etcd3's gRPC service clients (KV, Lease, Watch) of the registry's one member, a copy: the same
 * objects as long as etcd3 keeps the member's channels (it closes them all on a recoverable error).
 */
function services(r: EtcdRegistry): Record<string, unknown> {
  type Pool = { hosts: { cachedServices: Record<string, unknown> }[] };
  return { ...(r['conn'].client as unknown as { pool: Pool }).pool.hosts[0]?.cachedServices };
}

/**
 * Starts a separate node process that runs `body` (ES module code with `EtcdRegistry` in scope and
 * `ready()` to call once set up), so a test can SIGKILL it: a fleetd that dies without clean-up.
 */
async function childProcess(body: string): Promise<ChildProcess> {
  const module = new URL('../../registry/etcd-registry.js', import.meta.url).href;
  const code = `import { EtcdRegistry } from ${JSON.stringify(module)};
const ready = () => process.stdout.write('ready\\n');
${body}
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
      if (chunk.toString().includes('ready')) resolve();
    });
    child.once('exit', (exitCode) => {
      reject(new Error(`child exited with ${exitCode}: ${stderr}`));
    });
  });
  return child;
}

describe('registry/etcd-registry', function () {
  this.timeout(20_000);
  const etcd = useEtcd();

  registryContract('EtcdRegistry', () => {
    const { make, closeAll } = registries(etcd);
    return Promise.resolve({ registry: make(), peer: () => Promise.resolve(make()), cleanup: closeAll });
  });

  describe('on etcd', () => {
    let set: ReturnType<typeof registries>;
    let r: EtcdRegistry;
    const children: ChildProcess[] = [];

    beforeEach(() => {
      set = registries(etcd);
      r = set.make();
    });
    afterEach(async () => {
      for (const child of children.splice(0)) child.kill('SIGKILL');
      await set.closeAll();
    });

    const lead = (registry: EtcdRegistry = r): Promise<Leadership> =>
      registry.campaign('engine-a', 5, new AbortController().signal);
    const place = (unit: string, machine: string) => ({
      kind: 'put' as const,
      placement: { unit, machine, hash: `hash-${unit}`, desiredState: 'launched' as const },
    });

    it('sends one request per submit, per new placement and per unscheduled destroy', async () => {
      const l = await lead();
      const cost = async (fn: () => Promise<unknown>): Promise<number> => {
        const before = r.requestCount;
        await fn();
        return r.requestCount - before;
      };
      expect(await cost(() => r.submitUnit(unitRecord('a.service'), 'launched'))).to.equal(1);
      expect(await cost(() => r.submitUnit(unitRecord('a.service'), 'launched'))).to.equal(1);
      expect(await cost(() => r.setDesiredState('a.service', 'loaded'))).to.equal(1);
      expect(
        await cost(() => r.applySchedule([place('a.service', 'm1'), place('b.service', 'm2')], l)),
      ).to.equal(1);
      // Moving needs the current placement first: etcd returns it from the failed first try.
      expect(await cost(() => r.applySchedule([place('a.service', 'm2')], l))).to.equal(2);
      expect(await cost(() => r.destroyUnit('a.service'))).to.equal(2);
      await r.submitUnit(unitRecord('c.service'), 'inactive');
      expect(await cost(() => r.destroyUnit('c.service'))).to.equal(1);
      expect(r.stats().byOperation).to.include({ submitUnit: 3, applySchedule: 3, destroyUnit: 3 });
    });

    it('moves a unit with a put alone, removing it from the machine it was on', async () => {
      const l = await lead();
      await r.applySchedule([place('a.service', 'm1')], l);
      expect(await r.applySchedule([place('a.service', 'm2')], l)).to.equal(true);
      expect(await r.machineSchedule('m1')).to.deep.equal([]);
      expect(await r.machineSchedule('m2')).to.deep.equal([place('a.service', 'm2').placement]);
    });

    it('splits a schedule over etcd’s 128-operation limit into fenced transactions', async () => {
      const l = await lead();
      const writes = Array.from({ length: 150 }, (_, i) =>
        place(`u${String(i).padStart(3, '0')}.service`, `m${i % 7}`),
      );
      const before = r.requestCount;
      expect(await r.applySchedule(writes, l)).to.equal(true);
      expect(r.requestCount - before).to.be.within(2, 5);
      expect(await r.listSchedule()).to.have.length(150);
    });

    it('keeps global entries in step with desired state', async () => {
      await r.submitUnit(unitRecord('g.service', ['Global=true']), 'loaded');
      expect(await r.setDesiredState('g.service', 'launched')).to.equal(true);
      expect((await r.listGlobalUnits()).map((s) => s.desiredState)).to.deep.equal(['launched']);
    });

    it('treats a value it cannot decode as absent (etcd-malformed.spec.ts has the rest)', async () => {
      await etcd.current.client().put(`${set.prefix}unit/bad.service`).value('{"v":1,"name":7}');
      await etcd.current.client().put(`${set.prefix}desired/bad.service`).value('{"v":1,"state":"launched"}');
      expect(await r.getUnit('bad.service')).to.equal(undefined);
    });

    it('fires each watch for its own scope only', async () => {
      const l = await lead();
      const presence = await r.announceMachine(machineRecord('m1'), 10);
      const m1 = counter();
      const m2 = counter();
      const globals = counter();
      const machines = counter();
      const units = counter();
      const subs = [
        await r.watchMachineSchedule('m1', m1.listener),
        await r.watchMachineSchedule('m2', m2.listener),
        await r.watchGlobalUnits(globals.listener),
        await r.watchMachines(machines.listener),
        await r.watchUnits(units.listener),
      ];
      await r.applySchedule([place('a.service', 'm1')], l);
      await eventually(() => expect(m1.calls).to.equal(1));
      await r.applySchedule([place('b.service', 'm2')], l);
      await eventually(() => expect(m2.calls).to.equal(1));
      await r.submitUnit(unitRecord('plain.service'), 'launched');
      await eventually(() => expect(units.calls).to.equal(1));
      await r.changeMachineMetadata([{ machine: 'm1', key: 'disk', value: 'ssd' }]);
      await eventually(() => expect(machines.calls).to.equal(1));
      // Every write above has been delivered to its own watch by now (one etcd stream, in order).
      expect({ m1: m1.calls, m2: m2.calls, globals: globals.calls, units: units.calls }).to.deep.equal({
        m1: 1,
        m2: 1,
        globals: 0,
        units: 1,
      });
      await Promise.all(subs.map((s) => s.close()));
      await presence.close();
    });

    it('refuses a live machine ID with a message naming the holder', async () => {
      const p = await r.announceMachine(machineRecord('m1', {}, '10.250.0.7'), 5);
      const err = await failure(() => set.make().announceMachine(machineRecord('m1', {}, '10.250.0.8'), 5));
      expect(isFleetError(err, 'MACHINE_ID_IN_USE'), String(err)).to.equal(true);
      expect((err as Error).message).to.equal(
        'machine ID m1 is already in use by a live fleetd (public IP 10.250.0.7); ' +
          'do two machines share one /etc/machine-id?',
      );
      await p.close();
    });

    it('drops a crashed machine’s record and unit states when its lease expires', async () => {
      const child = await childProcess(`
        const r = new EtcdRegistry({ endpoints: [${JSON.stringify(etcd.current.clientUrl)}], prefix: ${JSON.stringify(set.prefix)} });
        const p = await r.announceMachine({ id: 'crashy', publicIp: '10.0.0.9', metadata: {}, version: 't' }, 1);
        await p.publishUnitState(${JSON.stringify(unitState('a.service', 'crashy'))});
        ready();`);
      children.push(child);
      expect((await r.listMachines()).map((m) => m.id)).to.deep.equal(['crashy']);
      expect(await r.listUnitStates({ machine: 'crashy' })).to.have.length(1);
      const gone = counter();
      const sub = await r.watchMachines(gone.listener);
      child.kill('SIGKILL');
      await eventually(
        async () => {
          expect(await r.listMachines()).to.deep.equal([]);
          expect(await r.listUnitStates()).to.deep.equal([]);
        },
        { timeoutMs: 3_000, description: 'the machine to vanish one TTL after its fleetd died' },
      );
      await eventually(() => expect(gone.calls).to.be.greaterThan(0));
      const again = await r.announceMachine(machineRecord('crashy'), 5);
      await again.close();
      await sub.close();
    });

    it('tells the presence it is lost when its lease is revoked elsewhere', async () => {
      // Loss shows at the next keepalive, sent every ttl/2.5.
      const p = await r.announceMachine(machineRecord('m1'), 2);
      let told = false;
      p.onLost(() => (told = true));
      const client = etcd.current.client();
      const kv = (await client.get(`${set.prefix}machines/m1`).exec()).kvs[0]!;
      await client.leaseClient.leaseRevoke({ ID: kv.lease });
      await eventually(() => expect(told).to.equal(true), { timeoutMs: 3_000 });
      expect(p.lost).to.equal(true);
      const err = await failure(() => p.publishUnitState(unitState('a.service', 'm1')));
      expect(isFleetError(err, 'REGISTRY_UNAVAILABLE')).to.equal(true);
    });

    it('refuses calls after close, which is idempotent and revokes presences at once', async () => {
      const other = set.make();
      await other.announceMachine(machineRecord('m1'), 30);
      await other.close();
      await other.close();
      expect(await r.listMachines()).to.deep.equal([]);
      const err = await failure(() => other.listUnits());
      expect(isFleetError(err, 'REGISTRY_UNAVAILABLE') && !err.retryable, String(err)).to.equal(true);
    });
  });

  describe('when etcd stops answering', () => {
    const own = useEtcd({ name: 'faulty' });
    let set: ReturnType<typeof registries>;

    beforeEach(() => {
      set = registries(own, { requestTimeoutMs: 500 });
    });
    afterEach(async () => {
      own.current.resume();
      if (!own.current.running) await own.current.restart();
      await set.closeAll();
    });

    async function timedFailure(fn: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
      const start = Date.now();
      const err = await failure(fn);
      return { err, ms: Date.now() - start };
    }

    it('fails with a retryable REGISTRY_UNAVAILABLE within its timeout while etcd is paused, and recovers', async () => {
      const r = set.make();
      await r.submitUnit(unitRecord('a.service'), 'launched');
      await freeze(own.current);
      const { err, ms } = await timedFailure(() => r.listUnits());
      expect(isFleetError(err, 'REGISTRY_UNAVAILABLE') && err.retryable, String(err)).to.equal(true);
      expect((err as Error).message).to.match(/listUnits/);
      expect(ms).to.be.below(1_000);
      own.current.resume();
      await eventually(async () => expect(await r.listUnits()).to.have.length(1), { timeoutMs: 5_000 });
    });

    it('keeps its gRPC channels when a request misses its deadline (a slow etcd is not a broken one)', async () => {
      const r = set.make();
      const fired = counter();
      const sub = await r.watchUnits(fired.listener);
      await r.listUnits();
      // etcd3's KV client of the one member: the same object as long as its channel is kept.
      // etcd3 closes every channel of a member on a recoverable error, which a missed deadline
      // was: each slow answer then cost new connections.
      const kvClient = (): unknown => services(r).KV;
      const before = kvClient();
      expect(before).to.not.equal(undefined);
      await freeze(own.current);
      const { err } = await timedFailure(() => r.listUnits());
      expect(isFleetError(err, 'REGISTRY_UNAVAILABLE') && err.retryable, String(err)).to.equal(true);
      own.current.resume();
      expect(await eventually(() => r.listUnits(), { timeoutMs: 5_000 })).to.deep.equal([]);
      expect(kvClient()).to.equal(before);
      await r.submitUnit(unitRecord('a.service'), 'launched');
      await eventually(() => expect(fired.calls).to.be.greaterThan(0));
      await sub.close();
    });

    it('keeps its gRPC channels and lease keepalive stream when its last watch is closed', async () => {
      const r = set.make();
      const presence = await r.announceMachine(machineRecord('m1'), 2);
      const sub = await r.watchUnits(() => undefined);
      // The first keepalive (at 0.8 s) opens the lease's stream.
      await eventually(() => expect(r.stats().keepalives).to.be.at.least(1), { timeoutMs: 3_000 });
      if (!(presence instanceof EtcdPresence)) throw new Error('not an etcd presence');
      const stream = (): unknown => presence.lease['channel'];
      const before = { services: services(r), stream: stream() };
      expect(Object.keys(before.services).sort()).to.deep.equal(['KV', 'Lease', 'Watch']);
      expect(before.stream).to.not.equal(undefined);
      // etcd3 cancels the watch stream when its last watcher goes, and used to take that
      // cancellation for a failed member: it closed every channel, the keepalive stream's too.
      await sub.close();
      const sent = r.stats().keepalives;
      await eventually(() => expect(r.stats().keepalives).to.be.at.least(sent + 2), { timeoutMs: 3_000 });
      expect(services(r).KV, 'KV client').to.equal(before.services.KV);
      expect(services(r).Lease, 'Lease client').to.equal(before.services.Lease);
      expect(stream(), 'keepalive stream').to.equal(before.stream);
      expect(presence.lost).to.equal(false);
    });

    it('fails fast while etcd is down, works again after a restart, and re-fires watches', async () => {
      const r = set.make();
      const fired = counter();
      const sub = await r.watchUnits(fired.listener);
      await own.current.kill();
      const { err, ms } = await timedFailure(() => r.submitUnit(unitRecord('a.service'), 'launched'));
      expect(isFleetError(err, 'REGISTRY_UNAVAILABLE') && err.retryable, String(err)).to.equal(true);
      expect(ms).to.be.below(1_000);
      await own.current.restart();
      await eventually(
        async () =>
          expect((await r.submitUnit(unitRecord('a.service'), 'launched')).kind).to.equal('created'),
        {
          timeoutMs: 5_000,
        },
      );
      // One call after the watch stream is back, and the change itself.
      await eventually(() => expect(fired.calls).to.be.greaterThan(0), { timeoutMs: 5_000 });
      const before = fired.calls;
      await r.setDesiredState('a.service', 'loaded');
      await eventually(() => expect(fired.calls).to.be.greaterThan(before));
      await sub.close();
    });

    it('gives a presence up when etcd cannot renew it within its TTL, and lets it announce again', async () => {
      const r = set.make();
      const p = await r.announceMachine(machineRecord('m1'), 1);
      let told = false;
      p.onLost(() => (told = true));
      await freeze(own.current);
      await eventually(() => expect(told).to.equal(true), { timeoutMs: 3_000 });
      own.current.resume();
      const again = await eventually(() => r.announceMachine(machineRecord('m1'), 5), { timeoutMs: 5_000 });
      expect((await r.listMachines()).map((m) => m.id)).to.deep.equal(['m1']);
      await again.close();
    });
  });
});
