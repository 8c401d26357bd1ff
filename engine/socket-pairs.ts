import type { StoredUnit } from '../registry/model.js';
import { NO_FLEET_OPTIONS, type FleetOptions } from '../unit/fleet-options.js';
import { activatedServiceOf } from '../unit/socket-activation.js';
import { expandSpecifiers } from '../unit/specifiers.js';
import { isTemplate } from '../unit/unit-name.js';
import type { DesiredState } from '../unit/states.js';
import { compareNames, machineIdMatches, type SchedulableUnit } from './cluster-snapshot.js';
import {
  describeUnplaceable,
  type ScheduleChange,
  type SchedulePlan,
  type Unplaceable,
} from './schedule-plan.js';

/**
 * Socket activation for the scheduler: a socket unit and the service it activates run on one
 * machine, without a hand-written MachineOf (fleet required one). Pure: from the stored units and
 * the current schedule to the units the scheduler sees, with implied MachineOf constraints and
 * raised desired states, plus the pairs that cannot be placed at all.
 *
 * A **pair** is a socket whose desired state is not `inactive` and the service it activates
 * (`activatedServiceOf`: `Service=`, else the same name, else with `Accept=yes` the template),
 * when that service is submitted. Several sockets may activate one service: they and the service
 * form one group, and all of it lands on one machine. The rules, per group:
 *
 * 1. **Global.** All global: nothing to do here (the agents load the service with the socket).
 *    Some global and some not: every unit of the group is unplaceable, with the reason
 *    `socket foo.socket is global but its service foo.service is not: make both global or neither`.
 * 2. **Pins.** Units of the group are bound together when one names another in MachineOf, when
 *    they have the same MachineID (full or short ID), or when they name a common MachineOf peer.
 *    A bound set is *pinned* when one of its units has a MachineID or a MachineOf outside the
 *    group. Two pinned sets are a contradiction: every unit of the group is unplaceable, with the
 *    reason `socket foo.socket and its service foo.service are pinned apart: MachineID m1 vs
 *    MachineOf db.service`.
 * 3. **Leader.** The pinned set leads, if there is one; otherwise the set of the first socket (by
 *    name) that is already scheduled, else of the service if it is already scheduled (so that a
 *    socket started for a running service joins it instead of moving it), else of the first
 *    socket. Every other set follows it: its unit that has no MachineOf gets an implied MachineOf
 *    on the leader's first unit (sockets by name, then the service). By default, then, the
 *    service follows its socket.
 * 4. **Desired state.** A service whose desired state is `inactive` is raised to `loaded` (never
 *    to `launched`), so that systemd has it when the socket fires; a service the user launched
 *    stays launched. This is how a template service (`foo@.service`, for `Accept=yes`) gets
 *    placed, although the API never activates templates. The [X-Fleet] specifiers of such a
 *    template are expanded for the template's own name (`%p`; `%i` is empty), as they would be
 *    for a unit that is not a template.
 *
 * Units in no group pass through unchanged (the same objects), so the scheduler treats units
 * without sockets exactly as before. Contradicted units that are not global are left out of the
 * scheduler's input, so they are unscheduled; global ones stay (the agents run global units).
 */

/** Why a group of socket and service cannot be placed. */
export interface SocketPairCause {
  readonly kind: 'socket-pair';
  readonly problem: 'global-mismatch' | 'pinned-apart';
  readonly service: string;
  /** The group's sockets, by name. */
  readonly sockets: readonly string[];
}

/** A unit of a socket group that cannot be placed, shaped like the scheduler's `Unplaceable`. */
export interface SocketPairUnplaceable {
  readonly unit: string;
  readonly reason: string;
  readonly cause: SocketPairCause;
}

/** What the engine reports as unplaceable: the scheduler's findings and the socket groups'. */
export type EngineUnplaceable = Unplaceable | SocketPairUnplaceable;

/** One group: a service and the sockets that activate it. */
export interface SocketGroup {
  readonly service: string;
  readonly sockets: readonly string[];
  /** Implied constraints: follower -> the unit it follows. */
  readonly follows: ReadonlyMap<string, string>;
}

export interface SocketPairs {
  /** The scheduler's input: every unit, groups adjusted, contradicted non-global units left out. */
  readonly units: readonly SchedulableUnit[];
  readonly groups: readonly SocketGroup[];
  /** Units of contradicted groups, by name. */
  readonly unplaceable: readonly SocketPairUnplaceable[];
}

/** The desired state and options a grouped unit ends up with. */
interface Adjusted {
  desiredState: DesiredState;
  fleet: FleetOptions;
}

/**
 * Pairs sockets with their services. `schedule` is the current schedule (unit -> machine); it
 * only decides which set leads when no unit of a group is pinned (rule 3).
 */
export function pairSockets(
  units: readonly StoredUnit[],
  schedule: ReadonlyMap<string, string>,
): SocketPairs {
  const byName = new Map<string, StoredUnit>();
  for (const u of units) if (!byName.has(u.unit.name)) byName.set(u.unit.name, u);

  const socketsOf = new Map<string, string[]>();
  for (const u of byName.values()) {
    if (u.desiredState === 'inactive' || !u.unit.name.endsWith('.socket')) continue;
    const service = activatedServiceOf(u.unit.name, u.unit.options);
    if (service === undefined || !byName.has(service)) continue;
    const list = socketsOf.get(service);
    if (list === undefined) socketsOf.set(service, [u.unit.name]);
    else list.push(u.unit.name);
  }

  const adjusted = new Map<string, Adjusted>();
  const dropped = new Set<string>();
  const groups: SocketGroup[] = [];
  const unplaceable: SocketPairUnplaceable[] = [];
  const services = [...socketsOf.keys()].sort(compareNames);
  for (const service of services) {
    const sockets = (socketsOf.get(service) ?? []).sort(compareNames);
    const stored = (name: string): StoredUnit => {
      const u = byName.get(name);
      if (u === undefined) throw new Error(`socket pairing lost unit ${name}`);
      return u;
    };
    const serviceUnit = stored(service);
    const fleetOf = new Map<string, FleetOptions>([
      ...sockets.map((s): [string, FleetOptions] => [s, stored(s).unit.fleet]),
      [service, isTemplate(service) ? expandFleet(serviceUnit.unit.fleet, service) : serviceUnit.unit.fleet],
    ]);
    const desired: DesiredState =
      serviceUnit.desiredState === 'inactive' ? 'loaded' : serviceUnit.desiredState;
    const members = [...sockets, service];
    const problem = groupProblem(service, sockets, fleetOf);
    if (problem !== undefined) {
      const cause: SocketPairCause = { kind: 'socket-pair', problem: problem.kind, service, sockets };
      for (const m of members) {
        unplaceable.push({ unit: m, reason: problem.reason, cause });
        if (!(fleetOf.get(m)?.global ?? false)) dropped.add(m);
      }
      groups.push({ service, sockets, follows: new Map() });
      continue;
    }
    // Global units have no MachineOf or MachineID (validation forbids it): nothing to imply.
    const follows = serviceUnit.unit.fleet.global
      ? new Map<string, string>()
      : impliedFollows(service, sockets, fleetOf, schedule);
    for (const m of members) {
      const fleet = fleetOf.get(m) ?? stored(m).unit.fleet;
      const leader = follows.get(m);
      adjusted.set(m, {
        desiredState: m === service ? desired : stored(m).desiredState,
        fleet: leader === undefined ? fleet : { ...fleet, machineOf: [leader] },
      });
    }
    groups.push({ service, sockets, follows });
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
 * The scheduler's plan in the words of socket pairing: a contradicted unit that the plan
 * unschedules (it was left out, so the plan says it no longer exists) is unscheduled with the
 * pair's reason, a unit whose MachineOf peer is such a unit says the peer could not be placed,
 * and the contradicted units join the unplaceable list (by name).
 */
export function explainPlan(
  plan: SchedulePlan,
  pairs: SocketPairs,
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

/** Rules 1 and 2: a mix of global and non-global units, or two pinned sets. */
function groupProblem(
  service: string,
  sockets: readonly string[],
  fleetOf: ReadonlyMap<string, FleetOptions>,
): { kind: SocketPairCause['problem']; reason: string } | undefined {
  const isGlobal = (n: string): boolean => fleetOf.get(n)?.global ?? false;
  const serviceGlobal = isGlobal(service);
  const odd = sockets.find((s) => isGlobal(s) !== serviceGlobal);
  if (odd !== undefined) {
    const reason = serviceGlobal
      ? `service ${service} is global but its socket ${odd} is not: make both global or neither`
      : `socket ${odd} is global but its service ${service} is not: make both global or neither`;
    return { kind: 'global-mismatch', reason };
  }
  if (serviceGlobal) return undefined;
  const sets = boundSets(service, sockets, fleetOf);
  const pinned = sets.filter((s) => s.pin !== undefined);
  const [a, b] = pinned;
  if (a?.pin === undefined || b?.pin === undefined) return undefined;
  const group = new Set([...sockets, service]);
  // Name the socket first: "socket s and its service v", or two sockets of the service.
  const [x, y] = a.pin === service ? [b.pin, a.pin] : [a.pin, b.pin];
  const pinText = (n: string): string => describePin(fleetOf.get(n) ?? NO_FLEET_OPTIONS, group);
  const who =
    y === service ? `socket ${x} and its service ${service}` : `sockets ${x} and ${y} of service ${service}`;
  return { kind: 'pinned-apart', reason: `${who} are pinned apart: ${pinText(x)} vs ${pinText(y)}` };
}

/** A set of group members that land together whatever the scheduler does. */
interface BoundSet {
  /** Members in group order (sockets by name, then the service). */
  readonly members: string[];
  /** The first member with a MachineID or a MachineOf outside the group, if any. */
  pin: string | undefined;
}

/** Rule 2: the group's members in bound sets, in group order. */
function boundSets(
  service: string,
  sockets: readonly string[],
  fleetOf: ReadonlyMap<string, FleetOptions>,
): BoundSet[] {
  const members = [...sockets, service];
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
  service: string,
  sockets: readonly string[],
  fleetOf: ReadonlyMap<string, FleetOptions>,
  schedule: ReadonlyMap<string, string>,
): Map<string, string> {
  const sets = boundSets(service, sockets, fleetOf);
  const follows = new Map<string, string>();
  if (sets.length < 2) return follows;
  const scheduledSocket = sockets.find((s) => schedule.has(s));
  const start = scheduledSocket ?? (schedule.has(service) ? service : sockets[0]);
  const leader =
    sets.find((s) => s.pin !== undefined) ??
    sets.find((s) => start !== undefined && s.members.includes(start));
  const target = leader?.members[0];
  if (leader === undefined || target === undefined) return follows;
  for (const set of sets) {
    if (set === leader) continue;
    // A set without a pin has a member without MachineOf, unless its members follow each other
    // in a cycle, which the scheduler rejects with its own reason.
    const root = set.members.find((m) => (fleetOf.get(m)?.machineOf.length ?? 0) === 0);
    if (root !== undefined) follows.set(root, target);
  }
  return follows;
}
