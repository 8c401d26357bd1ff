import type { DrainHeldUnit, DrainMovePhase, DrainProgress, DrainRecord } from '../registry/model.js';
import {
  compareNames,
  machineIdMatches,
  type ClusterSnapshot,
  type SchedulableUnit,
} from './cluster-snapshot.js';
import type { SchedulePlan } from './schedule-plan.js';

/**
 * The drain decision (`fleetctl drain`): a pure function the leading engine runs before every
 * scheduling pass. The engine, not fleetctl, drives a drain, so it goes on when fleetctl is
 * interrupted, and its progress is stored (fenced by leadership) so the next leader goes on where
 * the last one stopped.
 *
 * For each marked machine, in machine order:
 * - The machine is unschedulable: the scheduler places no new unit there (global units excepted,
 *   which its agent keeps running), while the units there stay until they are moved.
 * - A unit moves in two steps, so it never runs on two machines at once: `stopping` (taken off
 *   the machine and held off every machine until the machine's agent reports it stopped, or the
 *   machine is gone) then `starting` (released: the scheduler places it elsewhere, and the move
 *   ends when it is active there; a unit whose desired state is `loaded` ends once loaded there).
 *   A unit that fails where it went ends its move as `failed`, freeing its slot.
 * - At most `maxParallel` units are moving at once. A unit moves with the units that follow it
 *   (MachineOf) on that machine, as one group; a group larger than the limit moves alone.
 * - Units that cannot move stay and are listed with why: a MachineID naming the machine, a
 *   MachineOf peer that cannot move, or no other machine the scheduler would place them on (the
 *   scheduler's own reason). With `force` they are held off every machine (stopped) instead,
 *   until the machine is undrained.
 * - The drain is `drained` once nothing is moving and nothing movable is left.
 *
 * Undrain removes the mark: held units are released to the scheduler, which may place them back
 * on the machine; units that already moved stay where they are.
 */

/** One unit state as an agent reported it, as far as the drain needs it. */
export interface DrainUnitState {
  readonly machine: string;
  readonly hash: string;
  readonly activeState: string;
  readonly subState: string;
}

/** Where the scheduler would put a unit that leaves its draining machine now. */
export type OffPlacement =
  | { readonly kind: 'placed'; readonly machine: string }
  | { readonly kind: 'unplaceable'; readonly reason: string };

/** Everything the decision reads; plain data and one pure oracle. */
export interface DrainInput {
  readonly drains: readonly DrainRecord[];
  /** Every unit, with desired states as the scheduler will see them (socket pairing applied). */
  readonly units: readonly SchedulableUnit[];
  /** Live machine IDs. */
  readonly machines: ReadonlySet<string>;
  /** The current schedule: unit -> machine. */
  readonly schedule: ReadonlyMap<string, string>;
  /** Reported unit states: unit -> one entry per machine. */
  readonly states: ReadonlyMap<string, readonly DrainUnitState[]>;
  /**
   * The scheduler's answer for units taken off their draining machines together (with every
   * draining machine unschedulable). Must be pure; it is asked at most once per decision.
   */
  readonly placeOff: (units: readonly string[]) => ReadonlyMap<string, OffPlacement>;
}

/** One thing a drain did in this decision, for the engine's log. */
export interface DrainStep {
  readonly machine: string;
  readonly unit: string;
  readonly kind: 'stop' | 'start' | 'moved' | 'failed' | 'forced';
  readonly reason: string;
}

export interface DrainDecision {
  /** Machines that take no new placements. */
  readonly unschedulable: ReadonlySet<string>;
  /** Units kept off every machine in this pass (being stopped, or stopped by force). */
  readonly held: ReadonlySet<string>;
  /** The new progress of each drain, by machine. */
  readonly progress: ReadonlyMap<string, DrainProgress>;
  readonly steps: readonly DrainStep[];
}

/** Active states in which a unit is no longer running there (systemd's unit active states). */
const STOPPED = new Set(['inactive', 'failed']);

function stateOn(input: DrainInput, unit: string, machine: string): DrainUnitState | undefined {
  return input.states.get(unit)?.find((s) => s.machine === machine);
}

/** True once the unit no longer runs on the draining machine. */
function stoppedOn(input: DrainInput, unit: string, machine: string): boolean {
  if (!input.machines.has(machine)) return true;
  const s = stateOn(input, unit, machine);
  return s === undefined || STOPPED.has(s.activeState);
}

type Arrival =
  | { readonly kind: 'waiting' }
  | { readonly kind: 'moved'; readonly machine: string }
  | { readonly kind: 'failed'; readonly reason: string };

/** Whether a released unit has arrived where the scheduler put it. */
function arrival(input: DrainInput, unit: SchedulableUnit, from: string): Arrival {
  const to = input.schedule.get(unit.name);
  if (to === undefined || to === from) return { kind: 'waiting' };
  const s = stateOn(input, unit.name, to);
  if (s === undefined || s.hash !== unit.hash) return { kind: 'waiting' };
  if (unit.desiredState === 'loaded') return { kind: 'moved', machine: to };
  if (s.activeState === 'active') return { kind: 'moved', machine: to };
  if (s.activeState === 'failed') {
    return { kind: 'failed', reason: `failed on ${to} (${s.activeState}/${s.subState})` };
  }
  return { kind: 'waiting' };
}

/** A unit of a draining machine that has not started moving. */
interface Candidate {
  readonly unit: SchedulableUnit;
  /** The units that move with it (its MachineOf followers there, transitively), itself first. */
  readonly group: readonly string[];
}

interface Classified {
  readonly groups: Candidate[];
  readonly pinned: DrainHeldUnit[];
}

/**
 * Splits the units left on a draining machine into movable groups (a root and its followers)
 * and units pinned there, with why.
 */
function classify(
  machine: string,
  here: readonly SchedulableUnit[],
  byName: ReadonlyMap<string, SchedulableUnit>,
): Classified {
  const onMachine = new Map(here.map((u) => [u.name, u]));
  const reasons = new Map<string, string>();
  for (const u of here) {
    if (u.fleet.machineId !== undefined && machineIdMatches(machine, u.fleet.machineId)) {
      reasons.set(u.name, `MachineID ${u.fleet.machineId} pins it to ${machine}`);
    }
  }
  // A follower of a unit that cannot move cannot move either (repeat for chains).
  for (let changed = true; changed;) {
    changed = false;
    for (const u of here) {
      if (reasons.has(u.name)) continue;
      const peer = u.fleet.machineOf.find((p) => reasons.has(p) && onMachine.has(p));
      if (peer !== undefined) {
        reasons.set(u.name, `MachineOf ${peer}, which cannot leave ${machine}`);
        changed = true;
      }
    }
  }
  const pinned = [...reasons].map(([unit, reason]) => ({ unit, reason }));
  // Roots: movable units with no MachineOf peer among the machine's scheduled units.
  const followers = new Map<string, string[]>();
  const roots: SchedulableUnit[] = [];
  for (const u of here) {
    if (reasons.has(u.name)) continue;
    const peers = u.fleet.machineOf.filter((p) => onMachine.has(p) && byName.get(p) !== undefined);
    if (peers.length === 0) roots.push(u);
    for (const p of peers) followers.set(p, [...(followers.get(p) ?? []), u.name]);
  }
  const groups = roots.map((root) => {
    const group = [root.name];
    for (let i = 0; i < group.length; i++) {
      for (const f of followers.get(group[i] ?? '') ?? []) if (!group.includes(f)) group.push(f);
    }
    return { unit: root, group };
  });
  return { groups, pinned };
}

function byUnit(a: DrainHeldUnit, b: DrainHeldUnit): number {
  return compareNames(a.unit, b.unit);
}

/** Decides the next steps of every drain. Pure; idempotent for unchanged input. */
export function planDrains(input: DrainInput): DrainDecision {
  const unschedulable = new Set(input.drains.map((d) => d.mark.machine));
  const held = new Set<string>();
  const steps: DrainStep[] = [];
  const progress = new Map<string, DrainProgress>();
  const byName = new Map(input.units.map((u) => [u.name, u]));
  const running = (u: SchedulableUnit | undefined): u is SchedulableUnit =>
    u !== undefined && u.desiredState !== 'inactive' && !u.fleet.global;

  // Step 1: moves in flight go on; what stays on each machine is classified.
  interface Work {
    readonly machine: string;
    readonly maxParallel: number;
    readonly force: boolean;
    readonly moving: Map<string, DrainMovePhase>;
    readonly moved: string[];
    readonly failed: DrainHeldUnit[];
    readonly classified: Classified;
  }
  const work: Work[] = [];
  for (const { mark, progress: prev } of input.drains) {
    const machine = mark.machine;
    const moving = new Map<string, DrainMovePhase>();
    const moved = [...(prev?.moved ?? [])];
    const failed = [...(prev?.failed ?? [])];
    for (const [name, phase] of Object.entries(prev?.moving ?? {})) {
      const u = byName.get(name);
      if (!running(u)) continue; // destroyed or stopped meanwhile: nothing left to move
      if (phase === 'stopping') {
        if (stoppedOn(input, name, machine)) {
          moving.set(name, 'starting');
          steps.push({
            machine,
            unit: name,
            kind: 'start',
            reason: `stopped on ${machine}, placed elsewhere`,
          });
        } else {
          moving.set(name, 'stopping');
          held.add(name);
        }
        continue;
      }
      const a = arrival(input, u, machine);
      switch (a.kind) {
        case 'waiting':
          moving.set(name, 'starting');
          break;
        case 'moved':
          if (!moved.includes(name)) moved.push(name);
          steps.push({ machine, unit: name, kind: 'moved', reason: `active on ${a.machine}` });
          break;
        case 'failed':
          failed.push({ unit: name, reason: a.reason });
          steps.push({ machine, unit: name, kind: 'failed', reason: a.reason });
          break;
      }
    }
    const here = input.units
      .filter((u) => running(u) && input.schedule.get(u.name) === machine && !moving.has(u.name))
      .sort((a, b) => compareNames(a.name, b.name));
    work.push({
      machine,
      maxParallel: mark.maxParallel,
      force: mark.force,
      moving,
      moved,
      failed,
      classified: input.machines.has(machine) ? classify(machine, here, byName) : { groups: [], pinned: [] },
    });
  }

  // Step 2: one scheduler answer for every movable unit, as if they all left now.
  const movable = work.flatMap((w) => w.classified.groups.flatMap((g) => g.group));
  const answers = movable.length === 0 ? new Map<string, OffPlacement>() : input.placeOff(movable);

  // Step 3: start new moves up to each drain's limit; list what cannot move.
  for (const w of work) {
    const stuck: DrainHeldUnit[] = [...w.classified.pinned];
    let movableLeft = 0;
    for (const g of w.classified.groups) {
      const blocked = g.group
        .map((name) => ({ name, answer: answers.get(name) }))
        .find(({ answer }) => answer?.kind !== 'placed');
      if (blocked !== undefined) {
        const why =
          blocked.answer?.kind === 'unplaceable'
            ? blocked.answer.reason
            : 'the scheduler gave no answer for it';
        for (const name of g.group) {
          stuck.push({
            unit: name,
            reason:
              name === blocked.name
                ? why
                : `moves with ${g.unit.name}, and ${blocked.name} cannot move: ${why}`,
          });
        }
        continue;
      }
      movableLeft++;
      const free = w.maxParallel - w.moving.size;
      if (free <= 0 || (g.group.length > free && w.moving.size > 0)) continue;
      for (const name of g.group) {
        w.moving.set(name, 'stopping');
        held.add(name);
        steps.push({ machine: w.machine, unit: name, kind: 'stop', reason: `draining ${w.machine}` });
      }
      movableLeft--;
    }
    const forced: DrainHeldUnit[] = [];
    if (w.force) {
      for (const s of stuck) {
        held.add(s.unit);
        forced.push(s);
        steps.push({ machine: w.machine, unit: s.unit, kind: 'forced', reason: s.reason });
      }
    }
    // Units stopped by force earlier are no longer scheduled here; they stay held while marked.
    const prevForced = input.drains.find((d) => d.mark.machine === w.machine)?.progress?.forced ?? [];
    if (w.force) {
      for (const f of prevForced) {
        if (held.has(f.unit) || !running(byName.get(f.unit)) || input.schedule.has(f.unit)) continue;
        held.add(f.unit);
        forced.push(f);
      }
    }
    const moving = Object.fromEntries([...w.moving].sort(([a], [b]) => compareNames(a, b)));
    progress.set(w.machine, {
      state: w.moving.size === 0 && movableLeft === 0 ? 'drained' : 'draining',
      moving,
      moved: [...w.moved].sort(compareNames),
      stuck: w.force ? [] : stuck.sort(byUnit),
      forced: forced.sort(byUnit),
      failed: w.failed.sort(byUnit),
    });
  }
  return { unschedulable, held, progress, steps };
}

/**
 * The snapshot the scheduler plans on, with a drain decision applied: draining machines are
 * unschedulable and held units are treated as not wanted anywhere (so a unit being stopped is
 * taken off its machine and placed nowhere).
 */
export function applyDrainDecision(
  snapshot: ClusterSnapshot,
  decision: Pick<DrainDecision, 'unschedulable' | 'held'>,
): ClusterSnapshot {
  if (decision.unschedulable.size === 0 && decision.held.size === 0) return snapshot;
  return {
    units: snapshot.units.map((u) =>
      decision.held.has(u.name) && u.desiredState !== 'inactive' ? { ...u, desiredState: 'inactive' } : u,
    ),
    machines: snapshot.machines.map((m) =>
      decision.unschedulable.has(m.id) ? { ...m, unschedulable: true } : m,
    ),
    schedule: snapshot.schedule,
  };
}

/**
 * The `placeOff` oracle for {@link planDrains} from the real scheduler: plans `snapshot` with the
 * draining machines unschedulable and `units` taken off their machines, and reads where each
 * went, or why it could not go (the scheduler's own reason text).
 */
export function placeOffWith(
  snapshot: ClusterSnapshot,
  unschedulable: ReadonlySet<string>,
  plan: (s: ClusterSnapshot) => SchedulePlan,
): (units: readonly string[]) => ReadonlyMap<string, OffPlacement> {
  return (units) => {
    const leaving = new Set(units);
    const base = applyDrainDecision(snapshot, { unschedulable, held: new Set() });
    const schedule = new Map([...base.schedule].filter(([u]) => !leaving.has(u)));
    const result = plan({ ...base, schedule });
    const out = new Map<string, OffPlacement>();
    for (const c of result.changes) {
      if (c.kind === 'schedule' && leaving.has(c.unit))
        out.set(c.unit, { kind: 'placed', machine: c.machine });
    }
    for (const u of result.unplaceable) {
      if (leaving.has(u.unit)) out.set(u.unit, { kind: 'unplaceable', reason: u.reason });
    }
    return out;
  };
}
