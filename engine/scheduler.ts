import { ClusterIndex } from './cluster-index.js';
import type { ClusterSnapshot, SchedulableUnit } from './cluster-snapshot.js';
import { closesCycle } from './placement-cycles.js';
import { Planner } from './planner.js';
import type { SchedulePlan } from './schedule-plan.js';

/**
 * The scheduler: a pure, deterministic function from a cluster snapshot to schedule changes
 * (fleet's `engine/reconciler.go calculateClusterTasks` with `engine/scheduler.go`), no I/O, no
 * clock, no randomness.
 *
 * One pass:
 * 1. MachineOf and Replaces cycles are broken (placement-cycles.ts): units are left out, with a
 *    reason naming the cycle, until none is left; scheduled units are kept first, then by name,
 *    so a new unit never unschedules a running one by closing a cycle (fleet deadlocked on
 *    MachineOf cycles and launched an arbitrary one of two units replacing each other).
 * 2. Every scheduled unit is checked where it is, in name order. It is unscheduled when it no
 *    longer exists, is global, has desired state `inactive`, is rejected, its machine went away,
 *    or that machine no longer satisfies MachineID, MachineMetadata or MachineOf. Of two units
 *    that now conflict on a machine the first by name stays, and a unit that another unit on its
 *    machine replaces moves. Everything else stays where it is, even in an unbalanced cluster
 *    (minimal churn); followers move with a peer that moves.
 * 3. Global units, in name order, are counted on every machine where their MachineMetadata holds
 *    and they conflict with nothing already there (fleet's rule; scheduled units take precedence,
 *    so agents should skip a global unit that conflicts with a unit scheduled to them). They count
 *    as load whatever their desired state, as in fleet; but one whose desired state is inactive
 *    runs nowhere, so it counts wherever its metadata holds, blocks no Conflicts and satisfies no
 *    MachineOf. When units leave a machine, its global units are counted again.
 * 4. Units to place are taken in name order, except that a unit waits until its MachineOf peers
 *    are placed, so chains resolve in one pass. Each goes to the first eligible machine in
 *    least-loaded order (fewest units, global units counted, ties to the lowest machine ID); a
 *    follower goes to its peer's machine, a MachineID unit to its machine (full or short ID).
 *    A unit that is not scheduled but ran on a machine lately (`previous`: the engine's memory,
 *    e.g. across a replace, which passes through `inactive`) goes back there when that machine
 *    can run it. No unit goes where a unit that replaces it runs. A unit whose Replaces matches units on the
 *    chosen machine pushes them (and their followers) to other eligible machines in the same
 *    pass; fleet moved them without checking eligibility.
 * 5. A unit that fits nowhere stays unscheduled, with the constraints that excluded each machine.
 *    If a later push freed room, such units are tried again, so applying a plan and planning
 *    again changes nothing.
 *
 * The scheduler places; it does not compare hashes or desired states of units that stay. The
 * writer keeps the schedule records of those up to date.
 */

/** The engine's answer for one new unit (see `placeNewUnit`). */
export type NewUnitResult =
  | { readonly kind: 'planned'; readonly plan: SchedulePlan }
  | { readonly kind: 'full-plan-needed'; readonly reason: string };

/** Plans the whole cluster. Same snapshot, same plan. */
export function planCluster(snapshot: ClusterSnapshot): SchedulePlan {
  return planClusterIndexed(snapshot).plan;
}

/**
 * Plans the whole cluster and also returns the index, which describes the cluster as the plan
 * leaves it. The engine may keep the index to place new units with `placeNewUnit`, as long as the
 * plan was written in full; after any other change (or a failed write) it plans again.
 */
export function planClusterIndexed(snapshot: ClusterSnapshot): { plan: SchedulePlan; index: ClusterIndex } {
  // Cycles keep the scheduled units first. A unit kept that then finds no machine is not
  // scheduled after the plan, so planning that result again would keep another one: plan again
  // with the units the plan leaves placed first, until those agree (at most a few rounds, only
  // when there are cycles), so that planning the result again changes nothing.
  let first = (name: string): boolean => snapshot.schedule.has(name);
  for (let round = 1; ; round++) {
    const { plan, index, onCycles } = planOnce(snapshot, first);
    if (onCycles.size === 0 || round >= MAX_CYCLE_ROUNDS) return { plan, index };
    const placed = new Set([...onCycles].filter((name) => index.placement(name) !== undefined));
    if ([...onCycles].every((name) => placed.has(name) === first(name))) return { plan, index };
    first = (name) => placed.has(name);
  }
}

/** Plans for a cycle-breaking order never gets past this many rounds (see planClusterIndexed). */
const MAX_CYCLE_ROUNDS = 4;

function planOnce(
  snapshot: ClusterSnapshot,
  first: (name: string) => boolean,
): { plan: SchedulePlan; index: ClusterIndex; onCycles: Set<string> } {
  const index = new ClusterIndex(snapshot.machines);
  index.registerAll(snapshot.units);
  const planner = new Planner(index, false, snapshot.previous);
  const onCycles = planner.rejectCycles(first);
  planner.adoptSchedule(snapshot.schedule);
  planner.applyPlacedReplaces();
  planner.countGlobals();
  planner.checkPlacedPeers();
  for (const rec of index.allUnits()) if (rec.status === 'pending') planner.enqueue(rec);
  planner.run();
  return { plan: planner.result('all'), index, onCycles };
}

/**
 * Places one unit that is new to `index` (from `planClusterIndexed`, possibly updated by earlier
 * calls) and updates the index to match, in about the time of one decision, not a full plan. The
 * plan lists the changes this causes (the unit, units its Replaces pushes, followers that were
 * waiting for it) and the unplaceable units among those considered.
 *
 * Returns `full-plan-needed`, and leaves the index unusable, when the answer needs more than
 * placing: a unit of that name is already known, or the unit closes a MachineOf or Replaces cycle.
 */
export function placeNewUnit(index: ClusterIndex, unit: SchedulableUnit): NewUnitResult {
  if (index.unit(unit.name) !== undefined) {
    return { kind: 'full-plan-needed', reason: `unit ${unit.name} is already known; plan the cluster again` };
  }
  const rec = index.registerOne(unit);
  const planner = new Planner(index, true);
  if (rec.global) {
    planner.countNewGlobal(rec);
  } else if (rec.status === 'pending') {
    if (closesCycle(index, rec)) {
      return { kind: 'full-plan-needed', reason: `unit ${unit.name} closes a MachineOf or Replaces cycle` };
    }
    planner.enqueue(rec);
  }
  planner.retryFollowers(rec);
  planner.run();
  return { kind: 'planned', plan: planner.result('attempted') };
}
