import type { ClusterSnapshot, MachineInfo, SchedulableUnit } from '../../engine/cluster-snapshot.js';
import { applyChanges, type SchedulePlan } from '../../engine/schedule-plan.js';
import { planCluster } from '../../engine/scheduler.js';
import type { FleetOptions } from '../../unit/fleet-options.js';
import type { DesiredState } from '../../unit/states.js';

/** Builders for scheduler tests: short literals for units, machines and snapshots. */

export interface UnitSpec {
  readonly machineId?: string;
  readonly machineOf?: readonly string[];
  /** `{ region: 'eu' }` or `{ region: ['eu', 'us'] }`. */
  readonly metadata?: Readonly<Record<string, string | readonly string[]>>;
  readonly conflicts?: readonly string[];
  readonly replaces?: readonly string[];
  readonly state?: DesiredState;
}

function options(spec: UnitSpec, global: boolean): FleetOptions {
  return {
    ...(spec.machineId === undefined ? {} : { machineId: spec.machineId }),
    machineOf: spec.machineOf ?? [],
    machineMetadata: Object.entries(spec.metadata ?? {}).map(([key, v]) => ({
      key,
      values: typeof v === 'string' ? [v] : [...v],
    })),
    conflicts: spec.conflicts ?? [],
    global,
    replaces: spec.replaces ?? [],
  };
}

/** A non-global unit, desired state `launched` unless given. */
export function job(name: string, spec: UnitSpec = {}): SchedulableUnit {
  return {
    name,
    hash: `hash-of-${name}`,
    desiredState: spec.state ?? 'launched',
    fleet: options(spec, false),
  };
}

/** A global unit, desired state `launched` unless given. */
export function globalUnit(name: string, spec: UnitSpec = {}): SchedulableUnit {
  return {
    name,
    hash: `hash-of-${name}`,
    desiredState: spec.state ?? 'launched',
    fleet: options(spec, true),
  };
}

/** A machine with optional metadata. */
export function machine(id: string, metadata: Readonly<Record<string, string>> = {}): MachineInfo {
  return { id, metadata };
}

/** Machines without metadata. */
export function machines(...ids: string[]): MachineInfo[] {
  return ids.map((id) => machine(id));
}

export interface SnapshotSpec {
  readonly machines: readonly MachineInfo[];
  readonly units: readonly SchedulableUnit[];
  readonly schedule?: Readonly<Record<string, string>>;
}

export function snapshot(spec: SnapshotSpec): ClusterSnapshot {
  return {
    machines: spec.machines,
    units: spec.units,
    schedule: new Map(Object.entries(spec.schedule ?? {})),
  };
}

/** Changes in a compact form: `-a@m1` unschedules a from m1, `+a@m2` schedules it on m2. */
export function compact(plan: SchedulePlan): string[] {
  return plan.changes.map((c) => `${c.kind === 'schedule' ? '+' : '-'}${c.unit}@${c.machine}`);
}

/** The schedule after applying the plan to the snapshot's schedule, as a plain object. */
export function scheduleAfter(snap: ClusterSnapshot, plan: SchedulePlan): Record<string, string> {
  return Object.fromEntries(applyChanges(snap.schedule, plan.changes));
}

/** Plans and returns the plan, the resulting schedule, and the unplaceable reasons by unit. */
export function run(spec: SnapshotSpec): {
  plan: SchedulePlan;
  schedule: Record<string, string>;
  reasons: Record<string, string>;
} {
  const snap = snapshot(spec);
  const plan = planCluster(snap);
  return {
    plan,
    schedule: scheduleAfter(snap, plan),
    reasons: Object.fromEntries(plan.unplaceable.map((u) => [u.unit, u.reason])),
  };
}
