/**
 * Benchmark: the idle cost of fleetd on a real three-machine cluster (etcd on the host, fleetd as
 * a systemd service with its default configuration in systemd-nspawn machines).
 *
 * Starts `units` launched units (the engine spreads them), waits until all are reported
 * active/running, closes every registry client of this process (so nothing but the fleetds
 * talks to etcd), lets the cluster settle, then over a window of `windowSeconds`:
 * - samples each machine's fleetd every 5 s: CPU time (utime + stime from /proc/<MainPID>/stat in
 *   the machine) and RSS (VmRSS, split into anonymous and file-backed pages);
 * - reads etcd's /metrics before and after and counts the requests served meanwhile: unary calls
 *   by method and messages received on streams (one per lease keepalive, one per watch create or
 *   cancel).
 * After the window it lists etcd's live leases and the keys on each, to tell which leases the
 * keepalives are for.
 *
 * Targets: no etcd requests but lease keepalives, at most 30 keepalives per minute per machine;
 * fleetd RSS <= 80 MB (10^6 bytes; 76.3 MiB) and CPU <= 0.5 % of one core with 50 units.
 * Figures are printed and saved as bench/results/idle.json. Not a test. Needs root, like the lab.
 *
 *   node dist/bench/idle.js [windowSeconds=60] [units=50] [settleSeconds=10]
 */
import { setTimeout as delay } from 'node:timers/promises';

import { describeError } from '../lib/errors.js';
import type { EtcdRegistry } from '../registry/etcd-registry.js';
import type { UnitRecord } from '../registry/model.js';
import { FleetCluster, type ClusterMachine } from '../systemd-fixtures/cluster/fleet-cluster.js';
import {
  clockTicks,
  counterDelta,
  etcdCounters,
  etcdLeases,
  fleetdSample,
  type EtcdLeaseInfo,
  type FleetdSample,
} from './lib/lab-metrics.js';
import { saveResult, type ResultTable, type TargetCheck, runBench } from './lib/report.js';
import { benchUnit } from './lib/units.js';

const WINDOW_S = Number(process.argv[2] ?? 60);
const UNITS = Number(process.argv[3] ?? 50);
const SETTLE_S = Number(process.argv[4] ?? 10);
const MACHINES = 3;
const SAMPLE_EVERY_MS = 5_000;
const UNITS_TIMEOUT_MS = 180_000;

const KEEPALIVE = 'stream msg LeaseKeepAlive';
const RSS_TARGET_MB = 80;
const CPU_TARGET_PCT = 0.5;
const KEEPALIVE_TARGET_PER_MIN = 30;
/** fleetd's defaults: engine lease = 5 x engine_reconcile_interval (2 s); agent_ttl 10 s. */
const ENGINE_LEASE_TTL_S = 10;

/** What a live lease is for, from the keys on it. */
function leaseRole(cluster: FleetCluster, prefix: string, lease: EtcdLeaseInfo): string {
  if (lease.keys.includes(`${prefix}engine/leader`)) return 'engine leader key';
  const machineKey = lease.keys.find((k) => k.startsWith(`${prefix}machines/`));
  if (machineKey !== undefined) {
    const id = machineKey.slice(`${prefix}machines/`.length);
    return `presence of ${cluster.machineById(id)?.shortName ?? id.slice(0, 8)}`;
  }
  if (lease.keys.length === 0) return 'no keys';
  return `other (${lease.keys[0] ?? ''}...)`;
}

/** True when `value` is within 15 % of `expected`. */
const near = (value: number, expected: number): boolean => Math.abs(value - expected) <= expected * 0.15;

function record(i: number): UnitRecord {
  const name = `idle-${String(i).padStart(3, '0')}.service`;
  return benchUnit(name, [
    { section: 'Unit', name: 'Description', value: `idle benchmark unit ${i}` },
    { section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' },
  ]);
}

/** Starts the units and waits until all are active/running; returns machine ID -> unit count. */
async function startUnits(
  registry: EtcdRegistry,
  units: readonly UnitRecord[],
): Promise<Map<string, number>> {
  await Promise.all(
    units.map(async (u) => {
      const r = await registry.submitUnit(u, 'launched');
      if (r.kind === 'conflict') throw new Error(`${u.name} exists with other contents`);
    }),
  );
  const names = new Set(units.map((u) => u.name));
  const start = performance.now();
  let last = '';
  while (performance.now() - start < UNITS_TIMEOUT_MS) {
    try {
      const running = (await registry.listUnitStates()).filter(
        (s) => names.has(s.unit) && s.activeState === 'active' && s.subState === 'running',
      );
      if (running.length === units.length) {
        const per = new Map<string, number>();
        for (const s of running) per.set(s.machine, (per.get(s.machine) ?? 0) + 1);
        return per;
      }
      last = `${running.length} of ${units.length} active/running`;
    } catch (err) {
      last = describeError(err);
    }
    await delay(200);
  }
  throw new Error(`units not all active/running within ${UNITS_TIMEOUT_MS} ms (${last})`);
}

/** Counts the units systemd runs in the machine (a check that does not touch etcd). */
async function systemdActive(cluster: FleetCluster, m: ClusterMachine): Promise<number> {
  const r = await cluster.exec(m.index, [
    'systemctl',
    'list-units',
    '--plain',
    '--no-legend',
    '--state=active',
    'idle-*.service',
  ]);
  return r.stdout.split('\n').filter((line) => line.trim() !== '').length;
}

const mib = (kb: number): number => kb / 1024;
/** "min-max" in MiB of kB values. */
const range = (kbs: readonly number[]): string =>
  `${mib(Math.min(...kbs)).toFixed(1)}-${mib(Math.max(...kbs)).toFixed(1)}`;
const mb = (kb: number): number => (kb * 1024) / 1e6;

async function main(): Promise<void> {
  if (!(WINDOW_S >= 10)) throw new Error(`windowSeconds must be >= 10, not ${process.argv[2]}`);
  if (!Number.isInteger(UNITS) || UNITS < 0)
    throw new Error(`units must be an integer >= 0, not ${process.argv[3]}`);
  if (!(SETTLE_S >= 0)) throw new Error(`settleSeconds must be >= 0, not ${process.argv[4]}`);
  const started = performance.now();
  const cluster = await FleetCluster.start({ name: 'bench-idle', machines: MACHINES });
  console.log(
    `three-machine cluster ready in ${((performance.now() - started) / 1000).toFixed(1)} s ` +
      '(fleetd with its default configuration)',
  );
  let failed = false;
  try {
    const machines = cluster.machines;
    const registry = cluster.registry({ requestTimeoutMs: 10_000 });
    const units = Array.from({ length: UNITS }, (_, i) => record(i));
    const perMachine = await startUnits(registry, units);
    const unitsOf = (m: ClusterMachine): number => perMachine.get(m.machineId) ?? 0;
    console.log(
      `${UNITS} units active/running: ${machines.map((m) => `${m.shortName} ${unitsOf(m)}`).join(', ')}`,
    );
    const leader = (await cluster.leader())?.shortName ?? 'none';
    // From here on nothing of this process talks to etcd but the /metrics reads (plain HTTP,
    // not counted in etcd's gRPC counters).
    await cluster.close();
    await delay(SETTLE_S * 1000);

    const hz = await clockTicks(cluster, 1);
    const etcdUrl = cluster.etcdEndpoints[0];
    if (etcdUrl === undefined) throw new Error('no etcd endpoint');
    console.log(
      `\nidle window: ${WINDOW_S} s, fleetd sampled every ${SAMPLE_EVERY_MS / 1000} s (leader ${leader})`,
    );
    const sampleAll = (): Promise<FleetdSample[]> =>
      Promise.all(machines.map((m) => fleetdSample(cluster, m.index)));
    const before = await etcdCounters(etcdUrl);
    const windowStart = performance.now();
    const samples = [await sampleAll()];
    while (performance.now() - windowStart < WINDOW_S * 1000) {
      await delay(Math.min(SAMPLE_EVERY_MS, WINDOW_S * 1000 - (performance.now() - windowStart)));
      samples.push(await sampleAll());
    }
    const after = await etcdCounters(etcdUrl);
    const windowS = (performance.now() - windowStart) / 1000;
    const delta = counterDelta(before, after);
    const stillRunning = await Promise.all(machines.map((m) => systemdActive(cluster, m)));
    // After the window: these lookups are requests of their own.
    let leases: EtcdLeaseInfo[] | undefined;
    try {
      leases = await etcdLeases(etcdUrl);
    } catch (err) {
      console.log(`  (cannot list etcd's leases: ${describeError(err)})`);
    }

    // fleetd per machine.
    const machineRows: (string | number)[][] = [];
    const targets: TargetCheck[] = [];
    const notes: string[] = [];
    console.log('  fleetd per machine:');
    for (const [i, m] of machines.entries()) {
      const series = samples.flatMap((s) => (s[i] === undefined ? [] : [s[i]]));
      const first = series[0];
      const last = series.at(-1);
      if (first === undefined || last === undefined) throw new Error(`no samples of ${m.shortName}`);
      if (series.some((s) => s.pid !== first.pid))
        notes.push(`fleetd on ${m.shortName} restarted during the window.`);
      const cpuS = (last.ticks - first.ticks) / hz;
      const cpuPct = (cpuS / windowS) * 100;
      const rssKb = series.map((s) => s.rssKb);
      const minKb = Math.min(...rssKb);
      const maxKb = Math.max(...rssKb);
      const peak = series.find((s) => s.rssKb === maxKb);
      const split =
        peak === undefined
          ? ''
          : `anonymous ${mib(peak.anonKb).toFixed(1)} MiB (JavaScript heap, native allocations), ` +
            `file-backed ${mib(peak.fileKb).toFixed(1)} MiB (node binary, libraries), shmem ${mib(peak.shmemKb).toFixed(1)} MiB`;
      const role = m.shortName === leader ? 'leader' : '';
      console.log(
        `    ${m.shortName}${role === '' ? '' : ' (leader)'}: ${unitsOf(m)} units (${stillRunning[i]} active in systemd), ` +
          `CPU ${(cpuS * 1000).toFixed(0)} ms = ${cpuPct.toFixed(2)} % of one core, ` +
          `RSS ${mib(minKb).toFixed(1)}-${mib(maxKb).toFixed(1)} MiB = ${mb(minKb).toFixed(1)}-${mb(maxKb).toFixed(1)} MB` +
          (split === '' ? '' : `; at the peak ${split}`),
      );
      machineRows.push([
        m.shortName + (role === '' ? '' : ' (leader)'),
        unitsOf(m),
        Number(cpuPct.toFixed(3)),
        `${mib(minKb).toFixed(1)}-${mib(maxKb).toFixed(1)}`,
        `${mb(minKb).toFixed(1)}-${mb(maxKb).toFixed(1)}`,
        peak === undefined ? 'n/a' : Number(mib(peak.anonKb).toFixed(1)),
        peak === undefined ? 'n/a' : Number(mib(peak.fileKb).toFixed(1)),
      ]);
      targets.push({
        what: `fleetd RSS on ${m.shortName}${role === '' ? '' : ' (leader)'}, highest sample`,
        measured: `${mb(maxKb).toFixed(1)} MB (${mib(maxKb).toFixed(1)} MiB)`,
        target: `<= ${RSS_TARGET_MB} MB`,
        met: mb(maxKb) <= RSS_TARGET_MB,
        ...(mb(maxKb) <= RSS_TARGET_MB
          ? {}
          : {
              comment:
                `missed by ${(mb(maxKb) - RSS_TARGET_MB).toFixed(1)} MB; ` +
                `over the window anonymous memory ranged ${range(series.map((x) => x.anonKb))} MiB and ` +
                `file-backed ${range(series.map((x) => x.fileKb))} MiB` +
                (split === '' ? '' : `; at the peak ${split}`),
            }),
      });
      targets.push({
        what: `fleetd CPU on ${m.shortName}${role === '' ? '' : ' (leader)'} over ${windowS.toFixed(0)} s`,
        measured: `${cpuPct.toFixed(2)} %`,
        target: `<= ${CPU_TARGET_PCT} % of one core`,
        met: cpuPct <= CPU_TARGET_PCT,
        ...(cpuPct <= CPU_TARGET_PCT
          ? {}
          : { comment: `missed by ${(cpuPct - CPU_TARGET_PCT).toFixed(2)} percentage points` }),
      });
    }

    // etcd requests.
    const perMin = (n: number): number => (n * 60) / windowS;
    const requestKeys = [...delta.keys()]
      .filter((k) => k.startsWith('unary ') || k.startsWith('stream msg '))
      .sort();
    const keepalives = delta.get(KEEPALIVE) ?? 0;
    const others = requestKeys.filter((k) => k !== KEEPALIVE);
    const otherCount = others.reduce((n, k) => n + (delta.get(k) ?? 0), 0);
    const total = keepalives + otherCount;
    console.log(
      `  etcd requests during the window (from ${etcdUrl}/metrics), per minute: total / per machine`,
    );
    const requestRows: (string | number)[][] = [];
    for (const k of requestKeys) {
      const n = delta.get(k) ?? 0;
      requestRows.push([k, n, Number(perMin(n).toFixed(1)), Number((perMin(n) / MACHINES).toFixed(1))]);
      console.log(
        `    ${k.padEnd(32)} ${perMin(n).toFixed(1).padStart(7)} / ${(perMin(n) / MACHINES).toFixed(1)}`,
      );
    }
    requestRows.push([
      'all requests',
      total,
      Number(perMin(total).toFixed(1)),
      Number((perMin(total) / MACHINES).toFixed(1)),
    ]);
    console.log(
      `    ${'all requests'.padEnd(32)} ${perMin(total).toFixed(1).padStart(7)} / ${(perMin(total) / MACHINES).toFixed(1)}`,
    );
    const otherKeys = [...delta.keys()].filter((k) => !requestKeys.includes(k)).sort();
    const otherRows = otherKeys.map((k) => [
      k,
      delta.get(k) ?? 0,
      Number(perMin(delta.get(k) ?? 0).toFixed(1)),
    ]);
    if (otherKeys.length > 0) {
      console.log('  other etcd counters that moved (not requests of their own):');
      for (const k of otherKeys) console.log(`    ${k.padEnd(32)} ${delta.get(k) ?? 0}`);
    }
    const keepalivePerMachine = perMin(keepalives) / MACHINES;
    // Why requests other than keepalives happen, when the pattern is recognisable: each engine
    // that does not lead re-checks the leader key once per lease TTL (a Txn, and a watch created
    // and cancelled: two Watch stream messages).
    const recheckPerMin = ((MACHINES - 1) * 60) / ENGINE_LEASE_TTL_S;
    const txnPerMin = perMin(delta.get('unary Txn') ?? 0);
    const watchPerMin = perMin(delta.get('stream msg Watch') ?? 0);
    const onlyTxnWatch = others.every((k) => k === 'unary Txn' || k === 'stream msg Watch');
    let otherComment = `missed by ${otherCount} (${others.map((k) => `${k}: ${delta.get(k) ?? 0}`).join(', ')})`;
    if (onlyTxnWatch && near(txnPerMin, recheckPerMin) && near(watchPerMin, 2 * recheckPerMin)) {
      otherComment +=
        `: the pattern of the ${MACHINES - 1} engines that do not lead re-checking the leader key once per lease TTL ` +
        `(${ENGINE_LEASE_TTL_S} s), each a Txn plus a watch created and cancelled (${recheckPerMin} Txn and ` +
        `${2 * recheckPerMin} Watch messages per minute expected)`;
    }
    // Which leases are kept alive.
    const roles = new Map<string, number>();
    for (const l of leases ?? []) {
      const role = leaseRole(cluster, cluster.prefix, l);
      const key = `${role.startsWith('presence of') ? 'presence' : role} (TTL ${l.grantedTtlS} s)`;
      roles.set(key, (roles.get(key) ?? 0) + 1);
    }
    const leaseText =
      leases === undefined
        ? ''
        : `${leases.length} live leases after the window: ${[...roles].map(([r, n]) => `${n} x ${r}`).join(', ')}; ` +
          `${(perMin(keepalives) / Math.max(1, leases.length)).toFixed(1)} keepalives per lease per minute`;
    if (leaseText !== '') console.log(`  ${leaseText}`);
    // The busiest machine is the leader: its presence lease and the engine's leader lease. All
    // leases have the same TTL, so each gets the same share of the keepalives.
    const leaderLeases = (leases ?? []).filter(
      (l) => leaseRole(cluster, cluster.prefix, l) === 'engine leader key',
    );
    const perLease = perMin(keepalives) / Math.max(1, leases?.length ?? MACHINES);
    const busiestLeases = 1 + leaderLeases.length;
    const busiest = perLease * busiestLeases;
    targets.unshift(
      {
        what: 'etcd requests other than lease keepalives while idle (all machines)',
        measured: `${otherCount} in ${windowS.toFixed(0)} s (${perMin(otherCount).toFixed(1)} per minute)`,
        target: '0',
        met: otherCount === 0,
        ...(otherCount === 0 ? {} : { comment: otherComment }),
      },
      {
        what: `lease keepalives per minute on the busiest machine (the leader: ${busiestLeases} leases)`,
        measured: busiest.toFixed(1),
        target: `<= ${KEEPALIVE_TARGET_PER_MIN}`,
        met: busiest <= KEEPALIVE_TARGET_PER_MIN + 0.5,
        comment:
          `per lease ${perLease.toFixed(1)} per minute (every TTL/2.5); the others hold only their presence ` +
          `(${perLease.toFixed(1)} per minute). 30 is the limit itself (a keepalive every TTL/2.5 on two leases of 10 s); ` +
          'a reading up to 30.5 counts as met, since a 60 s window can hold one keepalive more or less per lease',
      },
      {
        what: 'lease keepalives per minute per machine (etcd total / 3)',
        measured: keepalivePerMachine.toFixed(1),
        target: `<= ${KEEPALIVE_TARGET_PER_MIN}`,
        met: keepalivePerMachine <= KEEPALIVE_TARGET_PER_MIN,
        ...(keepalivePerMachine <= KEEPALIVE_TARGET_PER_MIN
          ? leaseText === ''
            ? {}
            : { comment: leaseText }
          : {
              comment:
                `missed by ${(keepalivePerMachine - KEEPALIVE_TARGET_PER_MIN).toFixed(1)} per minute` +
                (leaseText === '' ? '' : `; ${leaseText}`),
            }),
      },
    );
    console.log('\ntargets:');
    for (const t of targets) {
      console.log(
        `  ${t.met ? 'met ' : 'MISS'} ${t.what}: ${t.measured} (${t.target})${t.comment === undefined ? '' : ` - ${t.comment}`}`,
      );
    }
    if (stillRunning.reduce((a, b) => a + b, 0) !== UNITS) {
      notes.push(
        `Only ${stillRunning.reduce((a, b) => a + b, 0)} of ${UNITS} units were active in systemd after the window.`,
      );
    }
    notes.push(
      'fleet v1.0.0: about 370 etcd reads per minute per idle machine.',
      'Per-machine request figures are etcd totals divided by 3: etcd does not count by client. The leader also holds the engine lease, so its share of keepalives is larger.',
      `RSS is VmRSS; MB = 10^6 bytes, MiB = 2^20 bytes (${RSS_TARGET_MB} MB = ${((RSS_TARGET_MB * 1e6) / 2 ** 20).toFixed(1)} MiB). The target is checked in MB.`,
    );

    if (leases !== undefined) {
      notes.push(
        `Leases alive after the window: ${leases.map((l) => `${leaseRole(cluster, cluster.prefix, l)} (TTL ${l.grantedTtlS} s)`).join('; ')}. ` +
          (leases.some((l) => l.keys.length === 0)
            ? ' A lease with no keys is kept alive for nothing stored (e.g. an engine campaign lease granted while waiting for leadership).'
            : ''),
      );
    }
    const tables: ResultTable[] = [
      {
        title: `fleetd per machine over ${windowS.toFixed(0)} s idle`,
        columns: [
          'machine',
          'units',
          'CPU % of one core',
          'RSS min-max (MiB)',
          'RSS min-max (MB)',
          'anonymous at peak (MiB)',
          'file-backed at peak (MiB)',
        ],
        rows: machineRows,
      },
      {
        title: 'etcd requests during the window (etcd /metrics)',
        columns: ['counter', 'count', 'per minute', 'per minute per machine'],
        rows: requestRows,
      },
    ];
    if (otherRows.length > 0) {
      tables.push({
        title: 'Other etcd counters that moved (stream opens, MVCC operations)',
        columns: ['counter', 'count', 'per minute'],
        rows: otherRows,
      });
    }
    saveResult({
      name: 'idle',
      title: 'Idle cost',
      durationMs: performance.now() - started,
      params: {
        machines: MACHINES,
        units: UNITS,
        windowSeconds: WINDOW_S,
        settleSeconds: SETTLE_S,
        sampleEverySeconds: SAMPLE_EVERY_MS / 1000,
        config: 'default (agent_ttl 10s, engine_reconcile_interval 2)',
      },
      method:
        `A three-machine FleetCluster with fleetd's default configuration; ${UNITS} launched units (sleep) started through the registry and spread by the engine. ` +
        `Once all are reported active/running this process closes its registry clients and waits ${SETTLE_S} s; then over ${WINDOW_S} s each fleetd's CPU time (utime + stime) and VmRSS are read from /proc in its machine every 5 s, ` +
        "and etcd's /metrics is read before and after: requests are unary gRPC calls plus messages received on streams (each lease keepalive, each watch create or cancel). Nothing else talks to etcd.",
      tables,
      targets,
      notes,
    });
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await cluster.destroy({ keepJournals: failed });
  }
}

runBench(main);
