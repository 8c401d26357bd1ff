/**
 * Benchmark: fleetd against real systemd in a lab machine.
 *
 * Boots a one-machine FleetCluster (etcd on the host, fleetd as a systemd service with its
 * default configuration), then:
 *
 * 1. Convergence, `runs` times: submits `units` launched units through the registry at once and
 *    measures, from the first submit, until the engine has placed them all, until the agent
 *    reports them all active/running in etcd, and until `systemctl` in the machine lists them all
 *    active. Then destroys them and waits until systemd has none left. Prints each run and the
 *    median.
 * 2. Idle cost: with `idleUnits` units running, samples fleetd's CPU time (utime + stime from
 *    /proc/<MainPID>/stat in the machine) and RSS every 5 s over `idleSeconds`, and counts the
 *    requests etcd served meanwhile (its /metrics: gRPC calls by method, stream messages, MVCC
 *    operations). Nothing else talks to etcd during the window.
 *
 * Not a test: it prints figures. Needs root, like the lab.
 *
 *   node dist/bench/agent-lab.js [units=100] [runs=3] [idleSeconds=60] [idleUnits=50]
 */
import { setTimeout as delay } from 'node:timers/promises';

import type { EtcdRegistry } from '../registry/etcd-registry.js';
import type { UnitRecord } from '../registry/model.js';
import { FleetCluster } from '../systemd-fixtures/cluster/fleet-cluster.js';
import { unitFromOptions } from '../unit/unit.js';

const UNITS = Number(process.argv[2] ?? 100);
const RUNS = Number(process.argv[3] ?? 3);
const IDLE_SECONDS = Number(process.argv[4] ?? 60);
const IDLE_UNITS = Number(process.argv[5] ?? 50);
const SAMPLE_EVERY_MS = 5_000;
/** Settling time after the idle units are up, so start-up work is not counted as idle. */
const SETTLE_MS = 5_000;
const CONVERGE_TIMEOUT_MS = 180_000;

function unitName(i: number): string {
  return `bench-${String(i).padStart(4, '0')}.service`;
}

function record(i: number): UnitRecord {
  const name = unitName(i);
  const options = [
    { section: 'Unit', name: 'Description', value: `agent-lab benchmark unit ${i}` },
    { section: 'Service', name: 'ExecStart', value: '/bin/sleep infinity' },
  ];
  const r = unitFromOptions(name, options);
  if (!r.ok) throw new Error(`bad benchmark unit ${name}`);
  return { name, hash: r.value.hash, options, fleet: r.value.fleet };
}

/** Polls `count` until it reaches `target`; returns the ms since `t0` when it did. */
async function reach(
  what: string,
  t0: number,
  target: number,
  count: () => Promise<number>,
  intervalMs: number,
): Promise<number> {
  let last = -1;
  while (performance.now() - t0 < CONVERGE_TIMEOUT_MS) {
    try {
      last = await count();
      if (last === target) return performance.now() - t0;
    } catch {
      // etcd or the machine busy past a deadline: try again on the next tick.
      last = -1;
    }
    await delay(intervalMs);
  }
  throw new Error(`${what}: ${last} of ${target} after ${CONVERGE_TIMEOUT_MS} ms`);
}

/** Counts `bench-*` units in the machine's systemd, all of them or only the active ones. */
async function systemdCount(cluster: FleetCluster, state: 'active' | 'any'): Promise<number> {
  const r = await cluster.exec('m1', [
    'systemctl',
    'list-units',
    '--plain',
    '--no-legend',
    ...(state === 'active' ? ['--state=active'] : ['--all']),
    'bench-*.service',
  ]);
  return r.stdout.split('\n').filter((line) => line.trim() !== '').length;
}

async function submitAll(registry: EtcdRegistry, units: readonly UnitRecord[]): Promise<void> {
  await Promise.all(
    units.map(async (u) => {
      const result = await registry.submitUnit(u, 'launched');
      if (result.kind === 'conflict') throw new Error(`${u.name} exists with other contents`);
    }),
  );
}

interface RunFigures {
  readonly submittedMs: number;
  readonly placedMs: number;
  readonly reportedMs: number;
  readonly systemdMs: number;
  readonly teardownMs: number;
}

async function convergenceRun(
  cluster: FleetCluster,
  registry: EtcdRegistry,
  count: number,
): Promise<RunFigures> {
  const units = Array.from({ length: count }, (_, i) => record(i));
  const names = new Set(units.map((u) => u.name));
  const t0 = performance.now();
  const submitting = submitAll(registry, units).then(() => performance.now() - t0);
  const [submittedMs, placedMs, reportedMs, systemdMs] = await Promise.all([
    submitting,
    reach(
      'placed',
      t0,
      count,
      async () => (await registry.listSchedule()).filter((p) => names.has(p.unit)).length,
      20,
    ),
    reach(
      'reported active/running',
      t0,
      count,
      async () =>
        (await registry.listUnitStates()).filter(
          (s) => names.has(s.unit) && s.activeState === 'active' && s.subState === 'running',
        ).length,
      20,
    ),
    reach('active in systemd', t0, count, () => systemdCount(cluster, 'active'), 50),
  ]);
  const t1 = performance.now();
  await Promise.all(units.map((u) => registry.destroyUnit(u.name)));
  await Promise.all([
    reach('states gone', t1, 0, async () => (await registry.listUnitStates()).length, 50),
    reach('gone from systemd', t1, 0, () => systemdCount(cluster, 'any'), 100),
  ]);
  return { submittedMs, placedMs, reportedMs, systemdMs, teardownMs: performance.now() - t1 };
}

/** fleetd's MainPID in the machine, its CPU ticks (utime + stime) and RSS in kB. */
async function fleetdSample(cluster: FleetCluster): Promise<{ pid: number; ticks: number; rssKb: number }> {
  const r = await cluster.exec('m1', [
    'sh',
    '-c',
    'p=$(systemctl show -p MainPID --value fleetd.service); echo "$p"; cat /proc/$p/stat; grep VmRSS /proc/$p/status',
  ]);
  const [pidLine = '', stat = '', rss = ''] = r.stdout.split('\n');
  // Fields after the parenthesised comm start at field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(rss)?.[1]);
  if (!Number.isFinite(ticks) || !Number.isFinite(rssKb)) throw new Error(`cannot read fleetd: ${r.stdout}`);
  return { pid: Number(pidLine), ticks, rssKb };
}

async function clockTicks(cluster: FleetCluster): Promise<number> {
  return Number((await cluster.exec('m1', ['getconf', 'CLK_TCK'])).stdout.trim());
}

/** etcd's Prometheus counters that count requests, by a readable key. */
async function etcdCounters(clientUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  const counters = new Map<string, number>();
  const add = (key: string, value: number): void => {
    counters.set(key, (counters.get(key) ?? 0) + value);
  };
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    const [, metric = '', labelText = '', raw = ''] = m;
    const labels = Object.fromEntries(
      [...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1] ?? '', l[2] ?? '']),
    );
    const value = Number(raw);
    if (metric === 'grpc_server_handled_total' && labels.grpc_type === 'unary') {
      add(`unary ${labels.grpc_method ?? '?'}`, value);
    } else if (metric === 'grpc_server_msg_received_total' && labels.grpc_type !== 'unary') {
      add(`stream msg ${labels.grpc_method ?? '?'}`, value);
    } else if (metric.startsWith('etcd_debugging_mvcc_') && metric.endsWith('_total')) {
      add(`mvcc ${metric.slice('etcd_debugging_mvcc_'.length, -'_total'.length)}`, value);
    }
  }
  return counters;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const ms = (v: number): string => `${Math.round(v)} ms`;

async function main(): Promise<void> {
  const booted = performance.now();
  const cluster = await FleetCluster.start({ name: 'bench-agent-lab', machines: 1 });
  console.log(
    `one-machine cluster ready in ${ms(performance.now() - booted)} (fleetd with its default configuration)`,
  );
  const registry = cluster.registry({ requestTimeoutMs: 10_000 });
  try {
    console.log(`\n${UNITS} launched units, submitted at once, until all run (${RUNS} runs):`);
    const runs: RunFigures[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const f = await convergenceRun(cluster, registry, UNITS);
      runs.push(f);
      console.log(
        `  run ${run}: submitted ${ms(f.submittedMs)}, placed ${ms(f.placedMs)}, ` +
          `reported active/running ${ms(f.reportedMs)}, active in systemd ${ms(f.systemdMs)}; ` +
          `destroy -> gone ${ms(f.teardownMs)}`,
      );
    }
    const med = (pick: (f: RunFigures) => number): string => ms(median(runs.map(pick)));
    console.log(
      `  median: placed ${med((f) => f.placedMs)}, reported active/running ${med((f) => f.reportedMs)}, ` +
        `active in systemd ${med((f) => f.systemdMs)}, destroy -> gone ${med((f) => f.teardownMs)}`,
    );

    console.log(`\nidle: ${IDLE_UNITS} units running, ${IDLE_SECONDS} s`);
    const idleUnits = Array.from({ length: IDLE_UNITS }, (_, i) => record(i));
    const t0 = performance.now();
    await submitAll(registry, idleUnits);
    await reach('idle units active', t0, IDLE_UNITS, () => systemdCount(cluster, 'active'), 100);
    await delay(SETTLE_MS);
    const hz = await clockTicks(cluster);
    const etcdUrl = cluster.etcdEndpoints[0];
    if (etcdUrl === undefined) throw new Error('no etcd endpoint');
    const countersBefore = await etcdCounters(etcdUrl);
    const first = await fleetdSample(cluster);
    const started = performance.now();
    const samples = [first];
    while (performance.now() - started < IDLE_SECONDS * 1000) {
      await delay(Math.min(SAMPLE_EVERY_MS, IDLE_SECONDS * 1000 - (performance.now() - started)));
      samples.push(await fleetdSample(cluster));
    }
    const elapsedS = (performance.now() - started) / 1000;
    const countersAfter = await etcdCounters(etcdUrl);
    const last = samples.at(-1) ?? first;
    if (samples.some((s) => s.pid !== first.pid)) console.log('  (fleetd restarted during the window!)');
    const cpuS = (last.ticks - first.ticks) / hz;
    const rss = samples.map((s) => s.rssKb / 1024);
    console.log(
      `  fleetd CPU: ${(cpuS * 1000).toFixed(0)} ms over ${elapsedS.toFixed(1)} s = ` +
        `${((cpuS / elapsedS) * 100).toFixed(2)} % of one core`,
    );
    console.log(
      `  fleetd RSS: ${Math.min(...rss).toFixed(1)}-${Math.max(...rss).toFixed(1)} MiB ` +
        `(first ${rss[0]?.toFixed(1)}, last ${rss.at(-1)?.toFixed(1)}; ${samples.length} samples)`,
    );
    console.log(`  etcd requests during the window, per minute (from ${etcdUrl}/metrics):`);
    const perMinute = (key: string): number =>
      (((countersAfter.get(key) ?? 0) - (countersBefore.get(key) ?? 0)) * 60) / elapsedS;
    const keys = [...new Set([...countersBefore.keys(), ...countersAfter.keys()])]
      .filter((k) => perMinute(k) > 0)
      .sort();
    for (const key of keys) console.log(`    ${key.padEnd(32)} ${perMinute(key).toFixed(1)}`);
    if (keys.length === 0) console.log('    none');
  } finally {
    await cluster.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
