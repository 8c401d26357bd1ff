import type { StoredUnit } from '../registry/model.js';
import { NO_FLEET_OPTIONS, type FleetOptions } from '../unit/fleet-options.js';
import { triggeredUnitOf } from '../unit/trigger-units.js';
import { expandSpecifiers } from '../unit/specifiers.js';
import { isTemplate, parseUnitName } from '../unit/unit-name.js';
import type { DesiredState } from '../unit/states.js';
import { compareNames, machineIdMatches, type SchedulableUnit } from './cluster-snapshot.js';
import {
  describeUnplaceable,
  type ScheduleChange,
  type SchedulePlan,
  type Unplaceable,
} from './schedule-plan.js';

/**
 * Trigger units for the scheduler: a trigger (a socket, a timer, a path unit, an automount) and
 * the unit it starts run on one machine, without a hand-written MachineOf (fleet required one),
 * because systemd starts only a unit it has loaded next to the trigger, and refuses to start a
 * trigger whose unit is not loaded. Pure: from the stored units and the current schedule to the
 * units the scheduler sees, with implied MachineOf constraints and raised desired states, plus
 * the pairs that cannot be placed at all.
 *
 * A **pair** is a trigger whose desired state is not `inactive` and the unit it triggers
 * (`triggeredUnitOf`: for a socket its service, for a timer or path unit `Unit=` or the service
 * of the same name, for an automount the mount of the same name), when that unit is submitted.
 * Several triggers may start one unit (a socket and a timer of one service, say): they and the
 * unit form one group, and all of it lands on one machine. The rules, per group:
 *
 * 1. **Global.** All global: nothing to do here (the agents load the unit with the trigger).
 *    Some global and some not: every unit of the group is unplaceable, with the reason
 *    `timer tick.timer is global but its service tick.service is not: make both global or neither`.
 * 2. **Pins.** Units of the group are bound together when one names another in MachineOf, when
 *    they have the same MachineID (full or short ID), or when they name a common MachineOf peer.
 *    A bound set is *pinned* when one of its units has a MachineID or a MachineOf outside the
 *    group. Two pinned sets are a contradiction: every unit of the group is unplaceable, with the
 *    reason `socket foo.socket and its service foo.service are pinned apart: MachineID m1 vs
 *    MachineOf db.service`.
 * 3. **Leader.** The pinned set leads, if there is one; otherwise the set of the first trigger
 *    (by name) that is already scheduled, else of the triggered unit if it is already scheduled
 *    (so that a trigger started for a running unit joins it instead of moving it), else of the
 *    first trigger. Every other set follows it: its unit that has no MachineOf gets an implied
 *    MachineOf on the leader's first unit (triggers by name, then the triggered unit). By
 *    default, then, the triggered unit follows its trigger.
 * 4. **Desired state.** A triggered unit whose desired state is `inactive` is raised to `loaded`
 *    (never to `launched`), so that systemd has it when the trigger fires; a unit the user
 *    launched stays launched. This is how a template service (`foo@.service`, for `Accept=yes`)
 *    gets placed, although the API never activates templates. The [X-Fleet] specifiers of such a
 *    template are expanded for the template's own name (`%p`; `%i` is empty), as they would be
 *    for a unit that is not a template.
 *
 * Units in no group pass through unchanged (the same objects), so the scheduler treats units
 * without triggers exactly as before. Contradicted units that are not global are left out of the
 * scheduler's input, so they are unscheduled; global ones stay (the agents run global units).
 */

/** Why a group of triggers and the unit they trigger cannot be placed. */
export interface TriggerPairCause {
  readonly kind: 'trigger-pair';
  readonly problem: 'global-mismatch' | 'pinned-apart';
  /** The triggered unit. */
  readonly target: string;
  /** The group's triggers, by name. */
  readonly triggers: readonly string[];
}

/** A unit of a trigger group that cannot be placed, shaped like the scheduler's `Unplaceable`. */
export interface TriggerPairUnplaceable {
  readonly unit: string;
  readonly reason: string;
  readonly cause: TriggerPairCause;
}

/** What the engine reports as unplaceable: the scheduler's findings and the trigger groups'. */
export type EngineUnplaceable = Unplaceable | TriggerPairUnplaceable;

/** One group: a triggered unit and the triggers that start it. */
export interface TriggerGroup {
  readonly target: string;
  readonly triggers: readonly string[];
  /** Implied constraints: follower -> the unit it follows. */
  readonly follows: ReadonlyMap<string, string>;
}

export interface TriggerPairs {
  /** The scheduler's input: every unit, groups adjusted, contradicted non-global units left out. */
  readonly units: readonly SchedulableUnit[];
  readonly groups: readonly TriggerGroup[];
  /** Units of contradicted groups, by name. */
  readonly unplaceable: readonly TriggerPairUnplaceable[];
}

/** The desired state and options a grouped unit ends up with. */
interface Adjusted {
  desiredState: DesiredState;
  fleet: FleetOptions;
}

/**
 * Pairs triggers with the units they trigger. `schedule` is the current schedule (unit ->
 * machine); it only decides which set leads when no unit of a group is pinned (rule 3).
 */
export function pairTriggers(
  units: readonly StoredUnit[],
  schedule: ReadonlyMap<string, string>,
): TriggerPairs {
  const byName = new Map<string, StoredUnit>();
  for (const u of units) if (!byName.has(u.unit.name)) byName.set(u.unit.name, u);

  const triggersOf = new Map<string, string[]>();
  for (const u of byName.values()) {
    if (u.desiredState === 'inactive') continue;
    const target = triggeredUnitOf(u.unit.name, u.unit.options);
    if (target === undefined || !byName.has(target)) continue;
    const list = triggersOf.get(target);
    if (list === undefined) triggersOf.set(target, [u.unit.name]);
    else list.push(u.unit.name);
  }

  const adjusted = new Map<string, Adjusted>();
  const dropped = new Set<string>();
  const groups: TriggerGroup[] = [];
  const unplaceable: TriggerPairUnplaceable[] = [];
  const targets = [...triggersOf.keys()].sort(compareNames);
  for (const target of targets) {
    const triggers = (triggersOf.get(target) ?? []).sort(compareNames);
    const stored = (name: string): StoredUnit => {
      const u = byName.get(name);
      if (u === undefined) throw new Error(`trigger pairing lost unit ${name}`);
      return u;
    };
    const targetUnit = stored(target);
    const fleetOf = new Map<string, FleetOptions>([
      ...triggers.map((s): [string, FleetOptions] => [s, stored(s).unit.fleet]),
      [target, isTemplate(target) ? expandFleet(targetUnit.unit.fleet, target) : targetUnit.unit.fleet],
    ]);
    const desired: DesiredState = targetUnit.desiredState === 'inactive' ? 'loaded' : targetUnit.desiredState;
    const members = [...triggers, target];
    const problem = groupProblem(target, triggers, fleetOf);
    if (problem !== undefined) {
      const cause: TriggerPairCause = {
        kind: 'trigger-pair',
        problem: problem.kind,
        target,
        triggers: triggers,
      };
      for (const m of members) {
        unplaceable.push({ unit: m, reason: problem.reason, cause });
        if (!(fleetOf.get(m)?.global ?? false)) dropped.add(m);
      }
      groups.push({ target, triggers, follows: new Map() });
      continue;
    }
    // Global units have no MachineOf or MachineID (validation forbids it): nothing to imply.
    const follows = targetUnit.unit.fleet.global
      ? new Map<string, string>()
      : impliedFollows(target, triggers, fleetOf, schedule);
    for (const m of members) {
      const fleet = fleetOf.get(m) ?? stored(m).unit.fleet;
      const leader = follows.get(m);
      adjusted.set(m, {
        desiredState: m === target ? desired : stored(m).desiredState,
        fleet: leader === undefined ? fleet : { ...fleet, machineOf: [leader] },
      });
    }
    groups.push({ target, triggers, follows });
  }

  const out: SchedulableUnit[] = [];
  for (const u of units) {
    const name = u.unit.name;
    if (dropped.has(name)) continue;
    const a = adjusted.get(name);
    out.push({
      name,
      hash: u.unit.hash,
      desiredState: a?.desiredState ?? u.desiredState,
      fleet: a?.fleet ?? u.unit.fleet,
    });
  }
  unplaceable.sort((a, b) => compareNames(a.unit, b.unit));
  return { units: out, groups, unplaceable };
}

/**
 * The scheduler's plan in the words of trigger pairing: a contradicted unit that the plan
 * unschedules (it was left out, so the plan says it no longer exists) is unscheduled with the
 * pair's reason, a unit whose MachineOf peer is such a unit says the peer could not be placed,
 * and the contradicted units join the unplaceable list (by name).
 */
export function explainPlan(
  plan: SchedulePlan,
  pairs: TriggerPairs,
): { readonly changes: readonly ScheduleChange[]; readonly unplaceable: readonly EngineUnplaceable[] } {
  if (pairs.unplaceable.length === 0) return plan;
  const reasons = new Map(pairs.unplaceable.map((u) => [u.unit, u.reason]));
  const changes = plan.changes.map((c): ScheduleChange => {
    const reason = reasons.get(c.unit);
    return c.kind === 'unschedule' && reason !== undefined ? { ...c, reason } : c;
  });
  const fromPlan = plan.unplaceable.map((u): Unplaceable => {
    const { cause } = u;
    if (cause.kind !== 'peer-unavailable' || cause.peerState !== 'missing' || !reasons.has(cause.peer))
      return u;
    const next = { ...cause, peerState: 'unplaceable' as const };
    return { ...u, cause: next, reason: describeUnplaceable(next) };
  });
  const unplaceable: EngineUnplaceable[] = [...fromPlan, ...pairs.unplaceable];
  unplaceable.sort((a, b) => compareNames(a.unit, b.unit));
  return { changes, unplaceable };
}

/** The options of a template with its specifiers expanded for its own name. */
function expandFleet(fleet: FleetOptions, name: string): FleetOptions {
  const x = (v: string): string => expandSpecifiers(v, name);
  return {
    ...fleet,
    ...(fleet.machineId === undefined ? {} : { machineId: x(fleet.machineId) }),
    machineOf: fleet.machineOf.map(x),
    machineMetadata: fleet.machineMetadata.map((r) => ({ key: x(r.key), values: r.values.map(x) })),
    conflicts: fleet.conflicts.map(x),
    replaces: fleet.replaces.map(x),
  };
}

/** `MachineID m1` or `MachineOf db.service, cache.service` (the peers outside the group). */
function describePin(fleet: FleetOptions, group: ReadonlySet<string>): string {
  if (fleet.machineId !== undefined) return `MachineID ${fleet.machineId}`;
  return `MachineOf ${fleet.machineOf.filter((p) => !group.has(p)).join(', ')}`;
}

/** `service`, `mount`, `timer`, ...: a unit's type as a word. */
function kindOf(name: string): string {
  return parseUnitName(name)?.type ?? 'unit';
}

/** Rules 1 and 2: a mix of global and non-global units, or two pinned sets. */
function groupProblem(
  target: string,
  triggers: readonly string[],
  fleetOf: ReadonlyMap<string, FleetOptions>,
): { kind: TriggerPairCause['problem']; reason: string } | undefined {
  const isGlobal = (n: string): boolean => fleetOf.get(n)?.global ?? false;
  const targetGlobal = isGlobal(target);
  const odd = triggers.find((s) => isGlobal(s) !== targetGlobal);
  if (odd !== undefined) {
    const reason = targetGlobal
      ? `${kindOf(target)} ${target} is global but its ${kindOf(odd)} ${odd} is not: make both global or neither`
      : `${kindOf(odd)} ${odd} is global but its ${kindOf(target)} ${target} is not: make both global or neither`;
    return { kind: 'global-mismatch', reason };
  }
  if (targetGlobal) return undefined;
  const sets = boundSets(target, triggers, fleetOf);
  const pinned = sets.filter((s) => s.pin !== undefined);
  const [a, b] = pinned;
  if (a?.pin === undefined || b?.pin === undefined) return undefined;
  const group = new Set([...triggers, target]);
  // Name the trigger first: "socket s and its service v", or two triggers of the unit.
  const [x, y] = a.pin === target ? [b.pin, a.pin] : [a.pin, b.pin];
  const pinText = (n: string): string => describePin(fleetOf.get(n) ?? NO_FLEET_OPTIONS, group);
  const both =
    kindOf(x) === kindOf(y) ? `${kindOf(x)}s ${x} and ${y}` : `${kindOf(x)} ${x} and ${kindOf(y)} ${y}`;
  const who =
    y === target
      ? `${kindOf(x)} ${x} and its ${kindOf(target)} ${target}`
      : `${both} of ${kindOf(target)} ${target}`;
  return { kind: 'pinned-apart', reason: `${who} are pinned apart: ${pinText(x)} vs ${pinText(y)}` };
}

/** A set of group members that land together whatever the scheduler does. */
interface BoundSet {
  /** Members in group order (triggers by name, then the target). */
  readonly members: string[];
  /** The first member with a MachineID or a MachineOf outside the group, if any. */
  pin: string | undefined;
}

/** Rule 2: the group's members in bound sets, in group order. */
function boundSets(
  target: string,
  triggers: readonly string[],
  fleetOf: ReadonlyMap<string, FleetOptions>,
): BoundSet[] {
  const members = [...triggers, target];
  const group = new Set(members);
  const parent = new Map(members.map((m) => [m, m]));
  const find = (m: string): string => {
    let r = m;
    for (let p = parent.get(r); p !== undefined && p !== r; p = parent.get(r)) r = p;
    parent.set(m, r);
    return r;
  };
  const fleet = (m: string): FleetOptions => fleetOf.get(m) ?? NO_FLEET_OPTIONS;
  for (let i = 0; i < members.length; i++) {
    for (let j = i + 1; j < members.length; j++) {
      const a = members[i] ?? '';
      const b = members[j] ?? '';
      if (bound(a, fleet(a), b, fleet(b), group)) parent.set(find(a), find(b));
    }
  }
  const sets = new Map<string, BoundSet>();
  for (const m of members) {
    const root = find(m);
    let set = sets.get(root);
    if (set === undefined) {
      set = { members: [], pin: undefined };
      sets.set(root, set);
    }
    set.members.push(m);
    const f = fleet(m);
    if (set.pin === undefined && (f.machineId !== undefined || f.machineOf.some((p) => !group.has(p))))
      set.pin = m;
  }
  return [...sets.values()];
}

/** True when two members always share a machine: one follows the other, same MachineID, or a common peer. */
function bound(
  a: string,
  fa: FleetOptions,
  b: string,
  fb: FleetOptions,
  group: ReadonlySet<string>,
): boolean {
  if (fa.machineOf.includes(b) || fb.machineOf.includes(a)) return true;
  const idA = fa.machineId;
  const idB = fb.machineId;
  if (idA !== undefined && idB !== undefined && (machineIdMatches(idA, idB) || machineIdMatches(idB, idA)))
    return true;
  return fa.machineOf.some((p) => !group.has(p) && fb.machineOf.includes(p));
}

/** Rule 3: which member follows which, for a group without a problem. */
function impliedFollows(
  target: string,
  triggers: readonly string[],
  fleetOf: ReadonlyMap<string, FleetOptions>,
  schedule: ReadonlyMap<string, string>,
): Map<string, string> {
  const sets = boundSets(target, triggers, fleetOf);
  const follows = new Map<string, string>();
  if (sets.length < 2) return follows;
  const scheduledTrigger = triggers.find((s) => schedule.has(s));
  const start = scheduledTrigger ?? (schedule.has(target) ? target : triggers[0]);
  const leader =
    sets.find((s) => s.pin !== undefined) ??
    sets.find((s) => start !== undefined && s.members.includes(start));
  const head = leader?.members[0];
  if (leader === undefined || head === undefined) return follows;
  for (const set of sets) {
    if (set === leader) continue;
    // A set without a pin has a member without MachineOf, unless its members follow each other
    // in a cycle, which the scheduler rejects with its own reason.
    const root = set.members.find((m) => (fleetOf.get(m)?.machineOf.length ?? 0) === 0);
    if (root !== undefined) follows.set(root, head);
  }
  return follows;
}
