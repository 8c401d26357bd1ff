import { expect } from 'chai';
import { describe, it, afterEach } from 'mocha';
import { setTimeout as delay } from 'node:timers/promises';

import type { ClusterMachine } from '../../systemd-fixtures/cluster/fleet-cluster.js';
import { eventually } from '../../systemd-fixtures/eventually.js';
import { figure, seconds, serviceFile, useE2eCluster } from './e2e-harness.js';

/**
 * fleetd's lifecycle on four machines (agent_ttl 10 s, fleetd's default): a `systemctl stop
 * fleetd` takes the machine's units with it and the machine leaves at once (not after
 * agent_ttl), its movable units run elsewhere without ever running twice, and a unit pinned to
 * it stops; fleet's TestDynamicClusterNewMemberUnitMigration (exactly one unit moves); a slow
 * ExecStop of one unit delays no other unit's start on that machine.
 */
describe('e2e: fleetd lifecycle on four machines (agent_ttl 10s)', function () {
  this.timeout(180_000);
  const {
    e,
    c,
    units: dir,
  } = useE2eCluster(
    {
      name: 'e2e-lc',
      machines: 4,
      agentTtl: '10s',
      fleetdConfig: ['engine_reconcile_interval=0.5'],
    },
    { ready: 'lifecycle cluster of 4', file: 'lifecycle' },
  );

  afterEach(async function () {
    // Leave every machine with fleetd running for the next test.
    this.timeout(60_000);
    for (const m of c().machines) await c().exec(m, ['systemctl', 'start', 'fleetd.service']);
    await c().waitUntilReady({ timeoutMs: 30_000 });
  });

  /** The units of `names` that systemd on `machine` runs now. */
  async function runningHere(machine: ClusterMachine, names: readonly string[]): Promise<string[]> {
    const view = await e().systemd(machine, names);
    return names.filter((n) => ['active', 'activating', 'deactivating'].includes(view.get(n)?.active ?? ''));
  }

  /**
   * Watches every machine's systemd until stopped, and records each unit of `names` seen running
   * on two machines at once (what "never two copies" forbids).
   */
  function watchForDoubles(names: readonly string[]): { stop: () => Promise<string[]> } {
    const doubles = new Set<string>();
    const state = { stopped: false };
    const loop = (async () => {
      while (!state.stopped) {
        const on = await e().runningOn(names);
        for (const [unit, machines] of on) {
          if (machines.length > 1) doubles.add(`${unit} on ${machines.join(' and ')}`);
        }
        await delay(100);
      }
    })();
    return {
      stop: async () => {
        state.stopped = true;
        await loop;
        return [...doubles];
      },
    };
  }

  it('stops the units of a stopped fleetd, which leaves at once; its units run elsewhere, never twice', async () => {
    const movable = Array.from({ length: 8 }, (_, i) => `stop-${i + 1}.service`);
    const paths = await Promise.all(movable.map((n) => dir().write(n, serviceFile())));
    await e().ok(['start', ...paths]);
    await e().settle(Object.fromEntries(movable.map((n) => [n, { state: 'active/running' }])));
    const leader = await c().leader();
    // A follower with units (the leader's engine would resign too; that is another test's).
    let victim: ClusterMachine | undefined;
    for (const m of c().machines) {
      if (m.machineId === leader?.machineId) continue;
      if ((await runningHere(m, movable)).length > 0) {
        victim = m;
        break;
      }
    }
    if (victim === undefined) throw new Error('no follower runs a unit');
    const pinned = 'stop-pinned.service';
    await e().ok([
      'start',
      await dir().write(pinned, serviceFile({ fleet: [`MachineID=${victim.machineId}`] })),
    ]);
    await e().settle({ [pinned]: { state: 'active/running', on: [victim.shortName] } });
    const moved = await runningHere(victim, movable);
    const other = c().machines.find((m) => m.shortName !== victim.shortName)!;
    const registry = e().registry();

    const watch = watchForDoubles(movable);
    const stopped = Date.now();
    const stop = c().exec(victim, ['systemctl', 'stop', 'fleetd.service']);
    const left = await eventually(
      async () => {
        const machines = await registry.listMachines();
        if (machines.some((m) => m.id === victim.machineId)) throw new Error('still listed');
        return Date.now() - stopped;
      },
      { timeoutMs: 30_000, intervalMs: 50, description: `${victim.shortName} to leave the machine list` },
    );
    const elsewhere = await eventually(
      async () => {
        const states = await registry.listUnitStates();
        const missing = moved.filter(
          (u) =>
            !states.some((s) => s.unit === u && s.machine !== victim.machineId && s.activeState === 'active'),
        );
        if (missing.length > 0) throw new Error(`not yet active elsewhere: ${missing.join(', ')}`);
        return Date.now() - stopped;
      },
      { timeoutMs: 30_000, intervalMs: 50, description: 'the moved units to run elsewhere' },
    );
    const r = await stop;
    expect(r.code, r.stderr).to.equal(0);
    figure(
      `systemctl stop fleetd (${victim.shortName}, ${moved.length} units + 1 pinned) -> machine gone ${seconds(left)}, units active elsewhere ${seconds(elsewhere)}`,
    );
    expect(left, 'ms until the stopped machine left').to.be.at.most(2_000);
    expect(elsewhere, 'ms until its units ran elsewhere').to.be.at.most(5_000);
    // Nothing runs on the machine whose fleetd stopped, the pinned unit included, and no unit
    // ran twice at any time.
    expect(await runningHere(victim, [...movable, pinned])).to.deep.equal([]);
    await e().settle(
      {
        ...Object.fromEntries(
          movable.map((n) => [n, { state: 'active/running', notOn: [victim.shortName] }]),
        ),
      },
      { on: other },
    );
    expect(await watch.stop(), 'units seen on two machines at once').to.deep.equal([]);
    expect((await e().runningOn([pinned])).get(pinned)).to.deep.equal([]);

    // fleetd back: the pinned unit runs again there, the others stay where they are.
    const watchAgain = watchForDoubles(movable);
    await c().exec(victim, ['systemctl', 'start', 'fleetd.service']);
    await c().waitUntilReady({ timeoutMs: 30_000 });
    await e().settle({ [pinned]: { state: 'active/running', on: [victim.shortName] } });
    expect(await watchAgain.stop(), 'units seen on two machines at once after the return').to.deep.equal([]);
    await e().destroy([...movable, pinned], other);
  });

  it('moves exactly one unit when fleetd stops under one of three conflicting units (fleet TestDynamicClusterNewMemberUnitMigration)', async () => {
    const names = ['mig-1.service', 'mig-2.service', 'mig-3.service'];
    const paths = await Promise.all(
      names.map((n) => dir().write(n, serviceFile({ fleet: ['Conflicts=mig-*'] }))),
    );
    await e().ok(['start', ...paths]);
    await e().settle(Object.fromEntries(names.map((n) => [n, { state: 'active/running' }])));
    const before = await e().mainPids(names);
    const busy = new Set([...before.values()].map((v) => v.machine));
    expect(busy.size, 'three machines run one unit each').to.equal(3);
    const free = c().machines.find((m) => !busy.has(m.shortName))!;
    const leader = await c().leader();
    const victimName = [...busy].find((m) => m !== leader?.shortName)!;
    const victim = c().machines.find((m) => m.shortName === victimName)!;
    const unit = names.find((n) => before.get(n)?.machine === victimName)!;
    const other = c().machines.find((m) => m.shortName !== victimName)!;

    const watch = watchForDoubles(names);
    const stopped = Date.now();
    const r = await c().exec(victim, ['systemctl', 'stop', 'fleetd.service']);
    expect(r.code, r.stderr).to.equal(0);
    await e().settle(
      Object.fromEntries(
        names.map((n) => [
          n,
          { state: 'active/running', on: [n === unit ? free.shortName : before.get(n)!.machine] },
        ]),
      ),
      { on: other, timeoutMs: 10_000 },
    );
    figure(
      `fleetd stopped under ${unit} -> it runs on the free ${free.shortName}: ${seconds(Date.now() - stopped)}`,
    );
    expect(await watch.stop(), 'units seen on two machines at once').to.deep.equal([]);
    const after = await e().mainPids(names);
    const changed = names.filter((n) => after.get(n)?.pid !== before.get(n)?.pid);
    expect(changed, 'units that moved or restarted').to.deep.equal([unit]);
    await e().destroy(names, other);
  });

  it('starts a unit promptly while another unit on the same machine takes 15 s to stop', async () => {
    const target = c().machines[1]!;
    const pin = [`MachineID=${target.machineId}`];
    // The time a plain start takes here, for the bound.
    const base = 'slow-base.service';
    const baseStarted = Date.now();
    await e().ok(['start', '--no-block', await dir().write(base, serviceFile({ fleet: pin }))]);
    await eventually(async () => expect(await runningHere(target, [base])).to.deep.equal([base]), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    const baseline = Date.now() - baseStarted;

    const slow = 'slow-stop.service';
    const slowText = serviceFile({ fleet: pin }).replace(
      '[Service]\n',
      '[Service]\nExecStop=/bin/sleep 15\n',
    );
    await e().ok(['start', await dir().write(slow, slowText)]);
    await e().settle({ [slow]: { state: 'active/running', on: [target.shortName] } });
    await e().ok(['stop', '--no-block', slow]);
    await eventually(
      async () => {
        const view = await e().systemd(target, [slow]);
        expect(view.get(slow)?.active).to.equal('deactivating');
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );

    const quick = 'slow-quick.service';
    const started = Date.now();
    await e().ok(['start', '--no-block', await dir().write(quick, serviceFile({ fleet: pin }))]);
    await eventually(async () => expect(await runningHere(target, [quick])).to.deep.equal([quick]), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const took = Date.now() - started;
    const view = await e().systemd(target, [slow]);
    figure(
      `start of a unit while another stops for 15 s on ${target.shortName}: ${seconds(took)} (a plain start: ${seconds(baseline)}; the slow one still ${view.get(slow)?.active ?? '?'})`,
    );
    expect(view.get(slow)?.active, 'the slow unit is still stopping').to.equal('deactivating');
    expect(took, 'ms to start the quick unit').to.be.at.most(baseline + 1_000);
    await e().destroy([base, slow, quick]);
  });
});
