/**
 * Scheduler benchmark: prints figures, asserts nothing. Run with `node dist/bench/scheduler.js`.
 *
 * Builds 1,000 machines with metadata and 10,000 units with mixed constraints, then times
 * - the full plan of the whole cluster from an empty schedule (median of several runs after
 *   warm-up; target <= 500 ms on 2 cores),
 * - a steady-state re-plan where every unit is already scheduled (the periodic reconcile),
 * - the placement of one new unit into the planned cluster with `placeNewUnit` (median over 300
 *   units of seven kinds, from plain to global; target <= 5 ms).
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { ClusterSnapshot, MachineInfo, SchedulableUnit } from '../engine/cluster-snapshot.js';
import { applyChanges } from '../engine/schedule-plan.js';
import { placeNewUnit, planCluster, planClusterIndexed } from '../engine/scheduler.js';
import type { FleetOptions } from '../unit/fleet-options.js';
import type { DesiredState } from '../unit/states.js';
import { saveResult, runBench } from './lib/report.js';

const MACHINES = 1000;
const UNITS = 10_000;
const FULL_RUNS = 7;
const WARM_UP = 3;
const NEW_UNITS = 300;

/** mulberry32: the same figures every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REGIONS = ['us-east', 'us-west', 'eu-central', 'ap-south'];
const NONE: FleetOptions = { machineOf: [], machineMetadata: [], conflicts: [], global: false, replaces: [] };

function machineIds(rnd: () => number): string[] {
  const ids = new Set<string>();
  while (ids.size < MACHINES) {
    let id = '';
    for (let i = 0; i < 32; i++) id += Math.floor(rnd() * 16).toString(16);
    ids.add(id);
  }
  return [...ids];
}

function buildMachines(ids: readonly string[]): MachineInfo[] {
  return ids.map((id, i) => ({
    id,
    metadata: {
      region: REGIONS[i % REGIONS.length] ?? 'us-east',
      disk: i % 3 === 0 ? 'ssd' : 'hdd',
      rack: `r${i % 40}`,
    },
  }));
}

function unit(
  name: string,
  fleet: Partial<FleetOptions> = {},
  desiredState: DesiredState = 'launched',
): SchedulableUnit {
  return { name, hash: name.padEnd(40, '0').slice(0, 40), desiredState, fleet: { ...NONE, ...fleet } };
}

/** The unit mix: mostly plain, then metadata, anti-affinity, MachineOf pairs, MachineID, Replaces, globals. */
function buildUnits(ids: readonly string[], rnd: () => number): SchedulableUnit[] {
  const units: SchedulableUnit[] = [];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  // 20 global units, some limited by metadata, one with a conflict.
  for (let i = 0; i < 20; i++) {
    units.push(
      unit(`global-${i}.service`, {
        global: true,
        machineMetadata:
          i % 4 === 0
            ? [{ key: 'disk', values: ['ssd'] }]
            : i === 7
              ? [{ key: 'region', values: ['ap-south'] }]
              : [],
        conflicts: i === 7 ? ['legacy-*.service'] : [],
      }),
    );
  }
  // 600 template instances with anti-affinity, in 3 templates.
  for (const t of ['web', 'api', 'worker']) {
    for (let i = 0; i < 200; i++) units.push(unit(`${t}@${i}.service`, { conflicts: [`${t}@*.service`] }));
  }
  // 300 MachineOf pairs.
  for (let i = 0; i < 300; i++) {
    units.push(unit(`main-${i}.service`));
    units.push(unit(`sidecar-${i}.service`, { machineOf: [`main-${i}.service`] }));
  }
  // 200 MachineID units (half by short ID).
  for (let i = 0; i < 200; i++) {
    const id = pick(ids);
    units.push(unit(`pinned-${i}.service`, { machineId: i % 2 === 0 ? id : id.slice(0, 8) }));
  }
  // 50 Replaces pairs.
  for (let i = 0; i < 50; i++) {
    units.push(unit(`legacy-${i}.service`));
    units.push(unit(`next-${i}.service`, { replaces: [`legacy-${i}.service`] }));
  }
  // 1,000 units with MachineMetadata.
  for (let i = 0; i < 1000; i++) {
    const fleet: Partial<FleetOptions> =
      i % 3 === 0
        ? {
            machineMetadata: [
              { key: 'region', values: [pick(REGIONS)] },
              { key: 'disk', values: ['ssd'] },
            ],
          }
        : { machineMetadata: [{ key: 'region', values: [pick(REGIONS), pick(REGIONS)] }] };
    units.push(unit(`regional-${i}.service`, fleet));
  }
  // The rest plain, a few loaded or inactive.
  for (let i = 0; units.length < UNITS; i++) {
    const r = rnd();
    units.push(unit(`app-${i}.service`, {}, r < 0.05 ? 'inactive' : r < 0.15 ? 'loaded' : 'launched'));
  }
  return units;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const start = performance.now();
  const value = fn();
  return { ms: performance.now() - start, value };
}

/** The kinds of new unit timed, one after another. */
const NEW_KINDS = [
  'plain',
  'metadata',
  'anti-affinity',
  'follower',
  'machine-id',
  'replaces',
  'global',
] as const;

function newUnit(i: number, ids: readonly string[]): SchedulableUnit {
  const kind = NEW_KINDS[i % NEW_KINDS.length] ?? 'plain';
  switch (kind) {
    case 'plain':
      return unit(`fresh-${i}.service`);
    case 'metadata':
      return unit(`fresh-${i}.service`, { machineMetadata: [{ key: 'region', values: ['eu-central'] }] });
    case 'anti-affinity':
      return unit(`web@new${i}.service`, { conflicts: ['web@*.service'] });
    case 'follower':
      return unit(`fresh-side-${i}.service`, { machineOf: [`main-${i % 300}.service`] });
    case 'machine-id':
      return unit(`fresh-${i}.service`, { machineId: ids[i % ids.length] ?? '' });
    case 'replaces':
      // Pushes a legacy unit off the machine it lands on, if one runs there.
      return unit(`fresh-next-${i}.service`, { replaces: [`legacy-${i % 50}.service`] });
    case 'global':
      return unit(`fresh-global-${i}.service`, {
        global: true,
        machineMetadata: [{ key: 'rack', values: ['r7'] }],
      });
  }
}

function main(): void {
  const began = performance.now();
  const rnd = random(20240601);
  const ids = machineIds(rnd);
  const machines = buildMachines(ids);
  const units = buildUnits(ids, rnd);
  const empty: ClusterSnapshot = { units, machines, schedule: new Map() };

  for (let i = 0; i < WARM_UP; i++) planCluster(empty);
  const fullRuns: number[] = [];
  let plan = planCluster(empty);
  for (let i = 0; i < FULL_RUNS; i++) {
    const run = time(() => planCluster(empty));
    fullRuns.push(run.ms);
    plan = run.value;
  }

  const scheduled = applyChanges(new Map(), plan.changes);
  const steady: ClusterSnapshot = { units, machines, schedule: scheduled };
  for (let i = 0; i < WARM_UP; i++) planCluster(steady);
  const steadyRuns: number[] = [];
  let steadyChanges = 0;
  for (let i = 0; i < FULL_RUNS; i++) {
    const run = time(() => planCluster(steady));
    steadyRuns.push(run.ms);
    steadyChanges = run.value.changes.length;
  }

  // One machine vanishes: its units move in the same pass.
  const lost = ids[0] ?? '';
  const afterLoss: ClusterSnapshot = {
    units,
    machines: machines.filter((m) => m.id !== lost),
    schedule: scheduled,
  };
  const lossRun = time(() => planCluster(afterLoss));

  const { index } = planClusterIndexed(empty);
  for (let i = 0; i < 20; i++) placeNewUnit(index, newUnit(100_000 + i, ids));
  const single: number[] = [];
  const byKind = new Map<string, number[]>();
  let placedNew = 0;
  for (let i = 0; i < NEW_UNITS; i++) {
    const u = newUnit(i, ids);
    const run = time(() => placeNewUnit(index, u));
    single.push(run.ms);
    const kind = NEW_KINDS[i % NEW_KINDS.length] ?? 'plain';
    byKind.set(kind, [...(byKind.get(kind) ?? []), run.ms]);
    if (run.value.kind === 'planned' && run.value.plan.changes.some((c) => c.kind === 'schedule'))
      placedNew++;
  }

  const scheduleCount = plan.changes.filter((c) => c.kind === 'schedule').length;
  const loads = ids.map((id) => index.machineLoad(id) ?? 0);
  const cpu = cpus();
  const out = (label: string, value: string): void => {
    console.log(`${label.padEnd(44)} ${value}`);
  };
  console.log(
    `scheduler benchmark: node ${process.version}, ${cpu.length} CPUs (${cpu[0]?.model ?? 'unknown'})`,
  );
  out('cluster', `${machines.length} machines, ${units.length} units`);
  out('full plan, empty schedule (median)', `${median(fullRuns).toFixed(1)} ms   target <= 500 ms`);
  out('full plan runs', fullRuns.map((v) => v.toFixed(1)).join(' '));
  out('  scheduled / unplaceable', `${scheduleCount} / ${plan.unplaceable.length}`);
  for (const u of plan.unplaceable.slice(0, 3)) out('  e.g.', `${u.unit}: ${u.reason}`);
  out(
    'steady re-plan, all scheduled (median)',
    `${median(steadyRuns).toFixed(1)} ms   (${steadyChanges} changes)`,
  );
  out(
    're-plan after one machine vanished',
    `${lossRun.ms.toFixed(1)} ms   (${lossRun.value.changes.length} changes)`,
  );
  out('one new unit, placeNewUnit (median)', `${median(single).toFixed(3)} ms   target <= 5 ms`);
  out(
    'one new unit, p99 / max',
    `${percentile(single, 0.99).toFixed(3)} / ${Math.max(...single).toFixed(3)} ms`,
  );
  out('  median by kind (ms)', [...byKind].map(([k, v]) => `${k} ${median(v).toFixed(3)}`).join(', '));
  out('  new non-global units placed', `${placedNew} of ${NEW_UNITS - (byKind.get('global')?.length ?? 0)}`);
  out('machine load min / max after', `${Math.min(...loads)} / ${Math.max(...loads)}`);

  const fullMedian = median(fullRuns);
  const singleMedian = median(single);
  saveResult({
    name: 'scheduler',
    title: 'Scheduler (pure, in process)',
    durationMs: performance.now() - began,
    params: { machines: machines.length, units: units.length, fullRuns: FULL_RUNS, newUnits: NEW_UNITS },
    method:
      `A seeded cluster of ${machines.length} machines with metadata and ${units.length} units with mixed ` +
      '[X-Fleet] constraints (MachineOf, Conflicts, MachineMetadata, Global, MachineID). The full plan is timed ' +
      `${FULL_RUNS} times after ${WARM_UP} warm-up runs; one new unit is placed into the planned cluster ` +
      `${NEW_UNITS} times (seven kinds of unit, from plain to global).`,
    tables: [
      {
        title: 'Planning time',
        columns: ['what', 'median', 'p99 / max', 'changes'],
        rows: [
          [
            'full plan, empty schedule',
            `${fullMedian.toFixed(1)} ms`,
            `- / ${Math.max(...fullRuns).toFixed(1)} ms`,
            plan.changes.length,
          ],
          [
            'steady re-plan, all scheduled',
            `${median(steadyRuns).toFixed(1)} ms`,
            `- / ${Math.max(...steadyRuns).toFixed(1)} ms`,
            steadyChanges,
          ],
          [
            're-plan after one machine vanished',
            `${lossRun.ms.toFixed(1)} ms`,
            '-',
            lossRun.value.changes.length,
          ],
          [
            'one new unit (placeNewUnit)',
            `${singleMedian.toFixed(3)} ms`,
            `${percentile(single, 0.99).toFixed(3)} / ${Math.max(...single).toFixed(3)} ms`,
            placedNew,
          ],
        ],
      },
    ],
    targets: [
      {
        what: `full plan, ${units.length} units on ${machines.length} machines (median)`,
        measured: `${fullMedian.toFixed(1)} ms`,
        target: '<= 500 ms',
        met: fullMedian <= 500,
      },
      {
        what: 'one new unit into that cluster (median)',
        measured: `${singleMedian.toFixed(3)} ms`,
        target: '<= 5 ms',
        met: singleMedian <= 5,
      },
    ],
    notes: [
      `Scheduled / unplaceable in the full plan: ${scheduleCount} / ${plan.unplaceable.length}.`,
      `Machine load after placing: min ${Math.min(...loads)}, max ${Math.max(...loads)} units.`,
      'The max of single placements is a garbage-collection pause, not the algorithm.',
    ],
  });
}

runBench(main);
