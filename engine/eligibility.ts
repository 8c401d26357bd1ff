import type { ClusterIndex, MachineRec, UnitRec } from './cluster-index.js';
import { compareNames, machineIdMatches } from './cluster-snapshot.js';
import { CONSTRAINT_ORDER, formatList, type Exclusion } from './schedule-plan.js';

/**
 * Can this unit run on that machine? fleet's `AbleToRun` (`agent/state.go`), checked in its order
 * against the index: MachineID, MachineMetadata, MachineOf, Conflicts (both directions), then
 * Replaces. The verdict is data: either eligible, with the units the placement would push off
 * (Replaces), or excluded, with the first constraint that failed.
 */

/** The first constraint a machine fails for a unit. */
export type ExclusionCause =
  /** The machine is draining: it takes no new placements. */
  | { readonly constraint: 'Draining' }
  | { readonly constraint: 'MachineID'; readonly value: string }
  | { readonly constraint: 'MachineMetadata'; readonly key: string; readonly values: readonly string[] }
  | { readonly constraint: 'MachineOf'; readonly peer: string }
  | {
      readonly constraint: 'Conflicts';
      /** Id in `index.conflicts`. */
      readonly patternId: number;
      readonly side: 'own' | 'theirs';
    }
  | {
      /** A unit there replaces this one. */
      readonly constraint: 'Replaces';
      /** Id in `index.replaces`. */
      readonly patternId: number;
    };

/** The outcome of checking one unit against one machine. */
export type Verdict =
  | {
      readonly kind: 'eligible';
      /** Units there that this unit's Replaces patterns match, by name: placing it moves them. */
      readonly displaces: readonly UnitRec[];
    }
  | { readonly kind: 'excluded'; readonly cause: ExclusionCause };

const ELIGIBLE: Verdict = { kind: 'eligible', displaces: [] };

function excluded(cause: ExclusionCause): Verdict {
  return { kind: 'excluded', cause };
}

/**
 * Checks whether the non-global unit `rec`, not placed on `m`, may be placed there.
 *
 * Deliberate difference from fleet: a machine running a unit that replaces `rec` is excluded
 * (fleet accepted it, then pushed `rec` off again on the next pass). `rec`'s own Replaces never
 * excludes a machine: the units it matches there are pushed off. They cannot include a MachineOf
 * peer of `rec`, since that would be a cycle, and units on cycles are never placed.
 */
export function checkPlacement(index: ClusterIndex, rec: UnitRec, m: MachineRec): Verdict {
  const fleet = rec.unit.fleet;
  const draining = checkSchedulable(m);
  if (draining !== undefined) return excluded(draining);
  if (fleet.machineId !== undefined && !machineIdMatches(m.id, fleet.machineId)) {
    return excluded({ constraint: 'MachineID', value: fleet.machineId });
  }
  const metadata = checkMetadata(rec, m);
  if (metadata !== undefined) return excluded(metadata);
  for (const peer of fleet.machineOf) {
    if (!index.peerPresent(peer, m)) return excluded({ constraint: 'MachineOf', peer });
  }
  const conflict = checkConflicts(index, rec, m);
  if (conflict !== undefined) return excluded(conflict);
  for (const id of rec.replaceMatchedBy) {
    if (index.replaces.heldOn(id, m.rank) > 0) {
      return excluded({ constraint: 'Replaces', patternId: id });
    }
  }
  return checkDisplacement(index, rec, m);
}

/**
 * A draining machine takes no new (non-global) placements. Only placement asks this: units
 * already there stay until the drain moves them, and global units run there as before.
 */
export function checkSchedulable(m: MachineRec): ExclusionCause | undefined {
  return m.unschedulable ? { constraint: 'Draining' } : undefined;
}

/**
 * Checks whether the global unit `rec` counts on `m`: fleet's agents run a global unit where its
 * MachineMetadata holds and it conflicts with nothing already there (`desiredAgentState`).
 *
 * A global unit whose desired state is inactive runs nowhere, so its Conflicts cannot matter: it
 * counts (as load only) wherever its MachineMetadata holds. fleet also checked its conflicts
 * against the units of the machine, which made the load it added depend on what was placed
 * first.
 */
export function checkGlobal(index: ClusterIndex, rec: UnitRec, m: MachineRec): ExclusionCause | undefined {
  return checkMetadata(rec, m) ?? (rec.active ? checkConflicts(index, rec, m) : undefined);
}

/**
 * The constraints of the MachineID and MachineMetadata kind, which depend on the machine alone:
 * what a unit already placed must still satisfy whatever else runs there.
 */
export function checkMachineOnly(rec: UnitRec, m: MachineRec): ExclusionCause | undefined {
  const id = rec.unit.fleet.machineId;
  if (id !== undefined && !machineIdMatches(m.id, id)) return { constraint: 'MachineID', value: id };
  return checkMetadata(rec, m);
}

/** Only the Conflicts check, both directions; `rec` must not be counted on `m`. */
export function checkConflicts(index: ClusterIndex, rec: UnitRec, m: MachineRec): ExclusionCause | undefined {
  for (const id of rec.conflictIds) {
    if (index.conflicts.matchedOn(id, m.rank) > 0)
      return { constraint: 'Conflicts', patternId: id, side: 'own' };
  }
  for (const id of rec.conflictMatchedBy) {
    if (index.conflicts.heldOn(id, m.rank) > 0)
      return { constraint: 'Conflicts', patternId: id, side: 'theirs' };
  }
  return undefined;
}

/** Only the MachineMetadata check. */
export function checkMetadata(rec: UnitRec, m: MachineRec): ExclusionCause | undefined {
  // AND across keys, OR within a key's values (fleet's `machine.HasMetadata`).
  for (const req of rec.unit.fleet.machineMetadata) {
    const value = m.metadata.get(req.key);
    if (value === undefined || !req.values.includes(value)) {
      return { constraint: 'MachineMetadata', key: req.key, values: req.values };
    }
  }
  return undefined;
}

function checkDisplacement(index: ClusterIndex, rec: UnitRec, m: MachineRec): Verdict {
  let displaced: UnitRec[] | undefined;
  for (const id of rec.replaceIds) {
    if (index.replaces.matchedOn(id, m.rank) === 0) continue;
    for (const job of m.jobs) {
      if (job === rec || !job.replaceMatchedBy.includes(id)) continue;
      displaced ??= [];
      if (!displaced.includes(job)) displaced.push(job);
    }
  }
  if (displaced === undefined) return ELIGIBLE;
  return { kind: 'eligible', displaces: displaced.sort((a, b) => compareNames(a.name, b.name)) };
}

/** The units on `m` a cause is about (for Conflicts and Replaces), by name. */
export function unitsInvolved(
  index: ClusterIndex,
  rec: UnitRec,
  m: MachineRec,
  cause: ExclusionCause,
): string[] {
  const out: string[] = [];
  switch (cause.constraint) {
    case 'Draining':
    case 'MachineID':
    case 'MachineMetadata':
    case 'MachineOf':
      return out;
    case 'Conflicts':
      for (const u of [...m.jobs, ...m.globals]) {
        const hit =
          cause.side === 'own'
            ? u.conflictMatchedBy.includes(cause.patternId)
            : u.conflictIds.includes(cause.patternId);
        if (u !== rec && hit) out.push(u.name);
      }
      break;
    case 'Replaces':
      for (const u of m.jobs) if (u !== rec && u.replaceIds.includes(cause.patternId)) out.push(u.name);
      break;
  }
  return out.sort(compareNames);
}

/** The public form of a cause, for the machines listed. */
export function toExclusion(
  index: ClusterIndex,
  cause: ExclusionCause,
  units: readonly string[],
  machines: readonly string[],
): Exclusion {
  switch (cause.constraint) {
    case 'Draining':
      return { constraint: 'Draining', machines };
    case 'MachineID':
      return { constraint: 'MachineID', value: cause.value, machines };
    case 'MachineMetadata':
      return { constraint: 'MachineMetadata', key: cause.key, values: cause.values, machines };
    case 'MachineOf':
      return { constraint: 'MachineOf', peer: cause.peer, machines };
    case 'Conflicts':
      return {
        constraint: 'Conflicts',
        pattern: index.conflicts.pattern(cause.patternId),
        side: cause.side,
        units,
        machines,
      };
    case 'Replaces':
      return { constraint: 'Replaces', pattern: index.replaces.pattern(cause.patternId), units, machines };
  }
}

/**
 * Why `rec` fails on one machine, in words: `MachineMetadata region=eu not met by m1`,
 * `conflicts with web@1.service on m2 (Conflicts web@*.service)`.
 */
export function describeCause(
  index: ClusterIndex,
  rec: UnitRec,
  m: MachineRec,
  cause: ExclusionCause,
): string {
  switch (cause.constraint) {
    case 'Draining':
      return `${m.id} is draining`;
    case 'MachineID':
      return `MachineID ${cause.value} does not name ${m.id}`;
    case 'MachineMetadata':
      return `MachineMetadata ${cause.key}=${cause.values.join('|')} not met by ${m.id}`;
    case 'MachineOf':
      return `MachineOf peer ${cause.peer} is not on ${m.id}`;
    case 'Conflicts': {
      const units = formatList(unitsInvolved(index, rec, m, cause), 3);
      const pattern = index.conflicts.pattern(cause.patternId);
      return cause.side === 'own'
        ? `conflicts with ${units} on ${m.id} (Conflicts ${pattern})`
        : `conflicts with ${units} on ${m.id} (their Conflicts ${pattern})`;
    }
    case 'Replaces': {
      const units = formatList(unitsInvolved(index, rec, m, cause), 3);
      return `replaced by ${units} on ${m.id} (Replaces ${index.replaces.pattern(cause.patternId)})`;
    }
  }
}

/**
 * Every machine's first failing constraint for `rec`, grouped: the structured detail of an
 * unplaceable unit. Machines where `rec` is eligible are left out. Groups follow the check order,
 * then the label; machines in a group are sorted by ID.
 */
export function explainExclusions(index: ClusterIndex, rec: UnitRec): Exclusion[] {
  const groups = new Map<string, { cause: ExclusionCause; units: Set<string>; machines: string[] }>();
  for (const m of index.machines) {
    const verdict = checkPlacement(index, rec, m);
    if (verdict.kind === 'eligible') continue;
    const key = causeKey(verdict.cause);
    let group = groups.get(key);
    if (group === undefined) {
      group = { cause: verdict.cause, units: new Set(), machines: [] };
      groups.set(key, group);
    }
    group.machines.push(m.id);
    for (const u of unitsInvolved(index, rec, m, verdict.cause)) group.units.add(u);
  }
  const out = [...groups.values()].map((g) =>
    toExclusion(index, g.cause, [...g.units].sort(compareNames), g.machines),
  );
  return out.sort(
    (a, b) =>
      CONSTRAINT_ORDER.indexOf(a.constraint) - CONSTRAINT_ORDER.indexOf(b.constraint) ||
      compareNames(sortKey(a), sortKey(b)),
  );
}

function sortKey(exclusion: Exclusion): string {
  switch (exclusion.constraint) {
    case 'Draining':
      return '';
    case 'MachineID':
      return exclusion.value;
    case 'MachineMetadata':
      return exclusion.key;
    case 'MachineOf':
      return exclusion.peer;
    case 'Conflicts':
      return `${exclusion.side}\0${exclusion.pattern}`;
    case 'Replaces':
      return exclusion.pattern;
  }
}

function causeKey(cause: ExclusionCause): string {
  switch (cause.constraint) {
    case 'Draining':
      return 'Draining';
    case 'MachineID':
      return `MachineID\0${cause.value}`;
    case 'MachineMetadata':
      return `MachineMetadata\0${cause.key}`;
    case 'MachineOf':
      return `MachineOf\0${cause.peer}`;
    case 'Conflicts':
      return `Conflicts\0${cause.side}\0${cause.patternId}`;
    case 'Replaces':
      return `Replaces\0${cause.patternId}`;
  }
}
