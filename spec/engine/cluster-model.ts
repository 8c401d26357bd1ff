import type { ClusterSnapshot, MachineInfo, SchedulableUnit } from '../../engine/cluster-snapshot.js';
import { applyChanges, type SchedulePlan } from '../../engine/schedule-plan.js';
import { globMatches } from '../../unit/glob.js';
import type { DesiredState } from '../../unit/states.js';
import { Random } from '../helpers/random.js';
import { globalUnit, job, type UnitSpec } from './scheduler-fixtures.js';

/**
 * Random clusters for property tests, and a deliberately naive model of fleet's rules to check
 * plans against: written from docs/fleet-compat.md §4.3-4.5 and our documented changes, not from the
 * scheduler's code.
 */

const FAMILIES = ['web@', 'api-', 'db-', 'cache', 'job'];
const CONFLICT_PATTERNS = ['web@*.service', 'api-*.service', 'db-?.service', 'cache*', '[bad', '*.service'];
const REPLACE_PATTERNS = ['db-*.service', 'api-1*.service', 'job1.service', 'cache[0-4].service'];
const REGIONS = ['a', 'b', 'c'];

export function randomMachines(rnd: Random): MachineInfo[] {
  const count = rnd.int(0, 30);
  const ids: string[] = [];
  while (ids.length < count) {
    const prior = ids.length > 0 && rnd.bool(0.15) ? rnd.pick(ids) : undefined;
    // Some machines share an 8-character short ID with an earlier one.
    const id =
      prior === undefined ? rnd.string('0123456789abcdef', 12) : prior.slice(0, 8) + rnd.string('xyz', 4);
    if (!ids.includes(id)) ids.push(id);
  }
  return ids.map((id) => {
    const metadata: Record<string, string> = {};
    if (rnd.bool(0.9)) metadata.region = rnd.pick(REGIONS);
    if (rnd.bool(0.7)) metadata.disk = rnd.pick(['ssd', 'hdd']);
    return { id, metadata };
  });
}

export function randomState(rnd: Random): DesiredState {
  const r = rnd.next();
  return r < 0.1 ? 'inactive' : r < 0.3 ? 'loaded' : 'launched';
}

export function randomUnits(rnd: Random, machines: readonly MachineInfo[]): SchedulableUnit[] {
  const count = rnd.int(0, 200);
  const names = Array.from(
    { length: count },
    (_, i) => `${rnd.pick(FAMILIES)}${i % 20}${i >= 20 ? `-${i}` : ''}.service`,
  );
  return names.map((name) => {
    const state = randomState(rnd);
    if (rnd.bool(0.05)) {
      return globalUnit(name, {
        state,
        ...(rnd.bool(0.4) ? { metadata: { region: rnd.pick(REGIONS) } } : {}),
        ...(rnd.bool(0.3) ? { conflicts: [rnd.pick(CONFLICT_PATTERNS)] } : {}),
      });
    }
    const spec: { -readonly [K in keyof UnitSpec]: UnitSpec[K] } = { state };
    if (rnd.bool(0.05)) {
      const m = machines.length > 0 && rnd.bool(0.8) ? rnd.pick(machines).id : 'nowhere';
      spec.machineId = rnd.bool(0.5) ? m.slice(0, 8) : m;
    }
    if (rnd.bool(0.12)) {
      spec.machineOf = rnd.bool(0.1)
        ? ['ghost.service']
        : [rnd.pick(names), ...(rnd.bool(0.2) ? [rnd.pick(names)] : [])];
    }
    if (rnd.bool(0.15)) {
      spec.metadata = rnd.bool(0.5)
        ? { region: [rnd.pick(REGIONS), rnd.pick(REGIONS)] }
        : { disk: 'ssd', region: rnd.pick(REGIONS) };
    }
    if (rnd.bool(0.15)) spec.conflicts = [rnd.bool(0.2) ? rnd.pick(names) : rnd.pick(CONFLICT_PATTERNS)];
    if (rnd.bool(0.06)) spec.replaces = [rnd.bool(0.3) ? rnd.pick(names) : rnd.pick(REPLACE_PATTERNS)];
    return job(name, spec);
  });
}

export function randomCluster(seed: number): ClusterSnapshot {
  const rnd = new Random(seed);
  const machines = randomMachines(rnd);
  const units = randomUnits(rnd, machines);
  const schedule = new Map<string, string>();
  for (const u of units) {
    if (!rnd.bool(0.5)) continue;
    schedule.set(
      u.name,
      machines.length > 0 && rnd.bool(0.85) ? rnd.pick(machines).id : `gone-${rnd.int(1, 3)}`,
    );
  }
  return { units, machines, schedule };
}

export function shuffled<T>(items: readonly T[], rnd: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rnd.int(0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export function firstByName<T>(items: readonly T[], key: (t: T) => string): Map<string, T> {
  const out = new Map<string, T>();
  for (const item of items) if (!out.has(key(item))) out.set(key(item), item);
  return out;
}

function metadataHolds(u: SchedulableUnit, m: MachineInfo): boolean {
  return u.fleet.machineMetadata.every((r) => {
    const v = Object.hasOwn(m.metadata, r.key) ? m.metadata[r.key] : undefined;
    return v !== undefined && r.values.includes(v);
  });
}

function conflict(a: SchedulableUnit, b: SchedulableUnit): boolean {
  if (a.name === b.name) return false;
  return (
    a.fleet.conflicts.some((p) => globMatches(p, b.name)) ||
    b.fleet.conflicts.some((p) => globMatches(p, a.name))
  );
}

export interface Model {
  readonly units: Map<string, SchedulableUnit>;
  readonly machines: Map<string, MachineInfo>;
  /** Per machine: the scheduled units, then the global units its agent runs (jobs first, globals by name). */
  readonly jobsOn: Map<string, SchedulableUnit[]>;
  readonly globalsOn: Map<string, SchedulableUnit[]>;
}

export function model(snap: ClusterSnapshot, schedule: ReadonlyMap<string, string>): Model {
  const units = firstByName(snap.units, (u) => u.name);
  const machines = firstByName(snap.machines, (m) => m.id);
  const jobsOn = new Map<string, SchedulableUnit[]>();
  const globalsOn = new Map<string, SchedulableUnit[]>();
  for (const id of machines.keys()) jobsOn.set(id, []);
  for (const [name, id] of schedule) {
    const u = units.get(name);
    if (u !== undefined) jobsOn.get(id)?.push(u);
  }
  const globals = [...units.values()]
    .filter((u) => u.fleet.global)
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const [id, m] of machines) {
    const running = [...(jobsOn.get(id) ?? [])];
    const counted: SchedulableUnit[] = [];
    for (const g of globals) {
      if (!metadataHolds(g, m)) continue;
      // A global unit with desired state inactive runs nowhere: it counts as load where its
      // metadata holds, and blocks nothing.
      if (g.desiredState === 'inactive') {
        counted.push(g);
        continue;
      }
      if (running.some((r) => conflict(g, r))) continue;
      counted.push(g);
      running.push(g);
    }
    globalsOn.set(id, counted);
  }
  return { units, machines, jobsOn, globalsOn };
}

/** Every rule the final schedule breaks, in words. */
export function violations(snap: ClusterSnapshot, plan: SchedulePlan): string[] {
  const out: string[] = [];
  const schedule = applyChanges(snap.schedule, plan.changes);
  const w = model(snap, schedule);
  for (const [name, id] of schedule) {
    const u = w.units.get(name);
    const m = w.machines.get(id);
    if (u === undefined || m === undefined) {
      out.push(`${name} scheduled on ${id} but the unit or machine does not exist`);
      continue;
    }
    if (u.fleet.global || u.desiredState === 'inactive')
      out.push(`${name} is global or inactive but scheduled`);
    const mid = u.fleet.machineId;
    if (mid !== undefined && id !== mid && id.slice(0, 8) !== mid)
      out.push(`${name} on ${id} against MachineID ${mid}`);
    if (!metadataHolds(u, m)) out.push(`${name} on ${id} against MachineMetadata`);
    for (const peer of u.fleet.machineOf) {
      const p = w.units.get(peer);
      const here =
        p !== undefined &&
        (p.fleet.global
          ? p.desiredState !== 'inactive' && (w.globalsOn.get(id) ?? []).includes(p)
          : schedule.get(peer) === id);
      if (!here) out.push(`${name} on ${id} without its MachineOf peer ${peer}`);
    }
  }
  for (const [id, jobs] of w.jobsOn) {
    for (const a of jobs) {
      for (const b of jobs) {
        if (a.name < b.name && conflict(a, b)) out.push(`${a.name} and ${b.name} conflict on ${id}`);
        if (a !== b && a.fleet.replaces.some((p) => globMatches(p, b.name)))
          out.push(`${a.name} replaces ${b.name} on ${id}`);
      }
    }
  }
  const unplaceable = new Set(plan.unplaceable.map((u) => u.unit));
  for (const u of w.units.values()) {
    const wants = !u.fleet.global && u.desiredState !== 'inactive';
    const placed = schedule.has(u.name);
    if (wants && placed === unplaceable.has(u.name))
      out.push(`${u.name} is ${placed ? 'both placed and unplaceable' : 'neither placed nor unplaceable'}`);
    if (!wants && unplaceable.has(u.name))
      out.push(`${u.name} does not want to run but is listed unplaceable`);
  }
  let current = new Map(snap.schedule);
  for (const c of plan.changes) {
    if (c.kind === 'unschedule' && current.get(c.unit) !== c.machine)
      out.push(`unschedule of ${c.unit} from ${c.machine} where it is not`);
    if (c.kind === 'schedule' && current.has(c.unit)) out.push(`schedule of ${c.unit} while still scheduled`);
    current = applyChanges(current, [c]);
  }
  return out;
}
