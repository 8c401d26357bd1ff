import { compareNames, type MachineInfo, type SchedulableUnit } from './cluster-snapshot.js';
import { LoadOrder } from './load-order.js';
import { PatternTable } from './pattern-table.js';
import type { Unplaceable } from './schedule-plan.js';

/**
 * Where a unit stands in the index. `inactive` and `global` units are never placed by the engine;
 * `pending` ones wait for a placement decision; `rejected` ones are left out of a MachineOf or Replaces
 * cycle and are never placed.
 */
export type UnitStatus = 'inactive' | 'global' | 'pending' | 'placed' | 'unplaceable' | 'rejected';

/** A live machine and what it runs, as far as the engine knows. */
export interface MachineRec {
  readonly id: string;
  /** Position in the machine list sorted by ID; counters and the load order use it. */
  readonly rank: number;
  readonly metadata: ReadonlyMap<string, string>;
  /** Draining: takes no new placements (see `MachineInfo.unschedulable`). */
  readonly unschedulable: boolean;
  /** Non-global units placed here. */
  readonly jobs: Set<UnitRec>;
  /** Global units counted here whose desired state is not inactive, in the order they were counted. */
  readonly globals: UnitRec[];
}

/** A unit with its constraints pre-digested for the scheduler. */
export interface UnitRec {
  readonly name: string;
  readonly unit: SchedulableUnit;
  readonly global: boolean;
  /** True unless the desired state is inactive. */
  readonly active: boolean;
  /** Ids (in `ClusterIndex.conflicts`) of this unit's own Conflicts patterns. */
  readonly conflictIds: readonly number[];
  /** Ids of every Conflicts pattern in the cluster that matches this unit's name. */
  readonly conflictMatchedBy: number[];
  /** Ids (in `ClusterIndex.replaces`) of this unit's own Replaces patterns. */
  readonly replaceIds: readonly number[];
  /** Ids of every Replaces pattern in the cluster that matches this unit's name. */
  readonly replaceMatchedBy: number[];
  status: UnitStatus;
  /** The machine a non-global unit is placed on (status `placed`). */
  machine: MachineRec | undefined;
  /** For a global unit: 1 at the rank of every machine that counts it. */
  readonly globalOn: Uint8Array | undefined;
  /** Why the unit is not placed (status `unplaceable` or `rejected`). */
  outcome: Unplaceable | undefined;
}

/**
 * The engine's working model of the cluster: machines with their load in least-loaded order, the
 * units placed on each, Conflicts and Replaces counters per machine, global unit membership, and
 * MachineOf followers. Built by the scheduler from a snapshot and updated by every decision, so
 * after a plan it describes the cluster as the plan leaves it; the engine may keep it between
 * reconciles to place new units without replanning (see `placeNewUnit`). Pure data, no I/O.
 *
 * Mutating methods are for the scheduler; the read methods at the end are for everyone.
 */
export class ClusterIndex {
  /** The live machines, sorted by ID. */
  readonly machines: readonly MachineRec[];
  readonly order: LoadOrder;
  readonly conflicts = new PatternTable();
  readonly replaces = new PatternTable();
  private readonly byId = new Map<string, MachineRec>();
  private readonly byShortId = new Map<string, MachineRec[]>();
  private readonly units = new Map<string, UnitRec>();
  private readonly followersOf = new Map<string, UnitRec[]>();
  /** The global units, by name. */
  private readonly globals: UnitRec[] = [];
  /** Per Replaces pattern id: the units whose names it matches. */
  private readonly replaceTargets: UnitRec[][] = [];

  /** An index of `machines` (repeated IDs ignored) with no units. */
  constructor(machines: readonly MachineInfo[]) {
    const seen = new Map<string, MachineInfo>();
    for (const m of machines) if (!seen.has(m.id)) seen.set(m.id, m);
    const sorted = [...seen.values()].sort((a, b) => compareNames(a.id, b.id));
    this.machines = sorted.map((m, rank) => ({
      id: m.id,
      rank,
      metadata: new Map(Object.entries(m.metadata)),
      unschedulable: m.unschedulable === true,
      jobs: new Set<UnitRec>(),
      globals: [],
    }));
    for (const m of this.machines) {
      this.byId.set(m.id, m);
      const short = m.id.slice(0, 8);
      const list = this.byShortId.get(short);
      if (list === undefined) this.byShortId.set(short, [m]);
      else list.push(m);
    }
    this.order = new LoadOrder(this.machines.length);
  }

  /** The unit named `name`. */
  unit(name: string): UnitRec | undefined {
    return this.units.get(name);
  }

  /** Every unit, in the order registered (by name for a full plan). */
  allUnits(): IterableIterator<UnitRec> {
    return this.units.values();
  }

  /** The global units, by name (the order in which agents consider them). */
  globalUnits(): readonly UnitRec[] {
    return this.globals;
  }

  /** The machine with exactly this ID. */
  machine(id: string): MachineRec | undefined {
    return this.byId.get(id);
  }

  /** The machines a MachineID value names (full ID, or 8-character short ID), by ID. */
  machinesMatchingId(value: string): readonly MachineRec[] {
    // An 8-character value is every machine's short ID it equals, an exact ID among them.
    if (value.length === 8) return this.byShortId.get(value) ?? [];
    const exact = this.byId.get(value);
    return exact === undefined ? [] : [exact];
  }

  /** The machine at `rank`. */
  machineAt(rank: number): MachineRec {
    const m = this.machines[rank];
    if (m === undefined) throw new RangeError(`no machine at rank ${rank}`);
    return m;
  }

  /** Non-global units naming `name` in MachineOf, in registration order. */
  followers(name: string): readonly UnitRec[] {
    return this.followersOf.get(name) ?? [];
  }

  /** The units `rec`'s Replaces patterns match, itself excluded. */
  replaceTargetsOf(rec: UnitRec): UnitRec[] {
    const out: UnitRec[] = [];
    for (const id of rec.replaceIds) {
      for (const target of this.replaceTargets[id] ?? []) {
        if (target !== rec && !out.includes(target)) out.push(target);
      }
    }
    return out;
  }

  /**
   * Registers many units at once (a full plan): sorted by name, repeated names ignored. Every
   * pattern is compiled once and every name tested once against the distinct patterns.
   */
  registerAll(units: readonly SchedulableUnit[]): void {
    const seen = new Map<string, SchedulableUnit>();
    for (const u of units) if (!seen.has(u.name)) seen.set(u.name, u);
    const sorted = [...seen.values()].sort((a, b) => compareNames(a.name, b.name));
    const recs = sorted.map((u) => this.createRec(u));
    for (const rec of recs) this.link(rec);
  }

  /**
   * Registers one more unit whose name is new, keeping every counter exact: a pattern seen for the
   * first time is tested against every known unit and counted where they run.
   */
  registerOne(unit: SchedulableUnit): UnitRec {
    const conflictsBefore = this.conflicts.size;
    const replacesBefore = this.replaces.size;
    const rec = this.createRec(unit);
    for (let id = conflictsBefore; id < this.conflicts.size; id++) {
      for (const other of this.units.values()) {
        if (other === rec || !this.conflicts.test(id, other.name)) continue;
        other.conflictMatchedBy.push(id);
        for (const rank of this.memberRanks(other)) this.conflicts.addMatch(id, rank, 1);
      }
    }
    for (let id = replacesBefore; id < this.replaces.size; id++) {
      const targets: UnitRec[] = (this.replaceTargets[id] ??= []);
      for (const other of this.units.values()) {
        // Replaces never moves a global unit: the engine does not place them.
        if (other === rec || other.global || !this.replaces.test(id, other.name)) continue;
        other.replaceMatchedBy.push(id);
        targets.push(other);
        if (other.machine !== undefined) this.replaces.addMatch(id, other.machine.rank, 1);
      }
    }
    this.link(rec);
    return rec;
  }

  /** Places the non-global unit `rec` on `m`. */
  join(rec: UnitRec, m: MachineRec): void {
    rec.machine = m;
    rec.status = 'placed';
    m.jobs.add(rec);
    this.count(rec, m.rank, 1, true);
    this.order.add(m.rank, 1);
  }

  /** Removes the non-global unit `rec` from its machine; its status is the caller's to set. */
  leave(rec: UnitRec): void {
    const m = rec.machine;
    if (m === undefined) return;
    m.jobs.delete(rec);
    this.count(rec, m.rank, -1, true);
    this.order.add(m.rank, -1);
    rec.machine = undefined;
  }

  /**
   * Counts the global unit `rec` on `m`: as load always (fleet counted global units whatever their
   * desired state), and for Conflicts and MachineOf only when its desired state is not inactive.
   */
  countGlobal(rec: UnitRec, m: MachineRec): void {
    if (rec.globalOn === undefined || rec.globalOn[m.rank] === 1) return;
    rec.globalOn[m.rank] = 1;
    if (rec.active) {
      m.globals.push(rec);
      this.count(rec, m.rank, 1, false);
    }
    this.order.add(m.rank, 1);
  }

  /** Undoes `countGlobal`. */
  uncountGlobal(rec: UnitRec, m: MachineRec): void {
    if (rec.globalOn?.[m.rank] !== 1) return;
    rec.globalOn[m.rank] = 0;
    if (rec.active) {
      m.globals.splice(m.globals.indexOf(rec), 1);
      this.count(rec, m.rank, -1, false);
    }
    this.order.add(m.rank, -1);
  }

  /** True when unit `name` is present on `m` for MachineOf: placed there, or an active global counted there. */
  peerPresent(name: string, m: MachineRec): boolean {
    const peer = this.units.get(name);
    if (peer === undefined) return false;
    if (peer.global) return peer.active && peer.globalOn?.[m.rank] === 1;
    return peer.machine === m;
  }

  // --- reading -------------------------------------------------------------------------------

  /** The load of machine `id` (units placed there plus global units counted there). */
  machineLoad(id: string): number | undefined {
    const m = this.byId.get(id);
    return m === undefined ? undefined : this.order.load(m.rank);
  }

  /** The machine unit `name` is placed on, if any. */
  placement(name: string): string | undefined {
    return this.units.get(name)?.machine?.id;
  }

  /**
   * The global units counted on machine `id` (as load, whatever their desired state), by name:
   * what the engine assumes that machine's agent runs besides its scheduled units.
   */
  globalUnitsOn(id: string): string[] {
    const m = this.byId.get(id);
    if (m === undefined) return [];
    return this.globals.filter((u) => u.globalOn?.[m.rank] === 1).map((u) => u.name);
  }

  /** The whole schedule as the index describes it: unit -> machine, by unit name. */
  schedule(): Map<string, string> {
    const out = new Map<string, string>();
    const placed = [...this.units.values()].filter((u) => u.machine !== undefined);
    placed.sort((a, b) => compareNames(a.name, b.name));
    for (const u of placed) if (u.machine !== undefined) out.set(u.name, u.machine.id);
    return out;
  }

  /** Every unit that wants to run but is not placed, with why, by name. */
  unplaceable(): Unplaceable[] {
    const out: Unplaceable[] = [];
    for (const u of this.units.values()) if (u.outcome !== undefined) out.push(u.outcome);
    return out.sort((a, b) => compareNames(a.unit, b.unit));
  }

  // --- internals -----------------------------------------------------------------------------

  private createRec(unit: SchedulableUnit): UnitRec {
    const global = unit.fleet.global;
    const active = unit.desiredState !== 'inactive';
    const rec: UnitRec = {
      name: unit.name,
      unit,
      global,
      active,
      conflictIds: unique(unit.fleet.conflicts).map((p) => this.conflicts.intern(p)),
      conflictMatchedBy: [],
      // Replaces of a global unit is meaningless (validation forbids it); agents ignore it.
      replaceIds: global ? [] : unique(unit.fleet.replaces).map((p) => this.replaces.intern(p)),
      replaceMatchedBy: [],
      status: global ? 'global' : active ? 'pending' : 'inactive',
      machine: undefined,
      globalOn: global ? new Uint8Array(this.machines.length) : undefined,
      outcome: undefined,
    };
    this.units.set(rec.name, rec);
    if (global) {
      let at = this.globals.length;
      while (at > 0 && compareNames(this.globals[at - 1]?.name ?? '', rec.name) > 0) at--;
      this.globals.splice(at, 0, rec);
    }
    return rec;
  }

  /** Fills `rec`'s matched-by lists and registers it as a follower and as a Replaces target. */
  private link(rec: UnitRec): void {
    rec.conflictMatchedBy.push(...this.conflicts.idsMatching(rec.name));
    // Replaces never moves a global unit: the engine does not place them.
    if (!rec.global) rec.replaceMatchedBy.push(...this.replaces.idsMatching(rec.name));
    for (const id of rec.replaceMatchedBy) (this.replaceTargets[id] ??= []).push(rec);
    // MachineOf of a global unit is ignored, as by fleet's agents (validation forbids it).
    if (!rec.global) {
      for (const peer of unique(rec.unit.fleet.machineOf)) {
        const list = this.followersOf.get(peer);
        if (list === undefined) this.followersOf.set(peer, [rec]);
        else list.push(rec);
      }
    }
  }

  /** The ranks where `rec` is a member for the counters. */
  private memberRanks(rec: UnitRec): number[] {
    if (rec.machine !== undefined) return [rec.machine.rank];
    if (rec.globalOn === undefined || !rec.active) return [];
    const out: number[] = [];
    rec.globalOn.forEach((v, rank) => {
      if (v === 1) out.push(rank);
    });
    return out;
  }

  private count(rec: UnitRec, rank: number, delta: number, withReplaces: boolean): void {
    for (const id of rec.conflictIds) this.conflicts.addHolder(id, rank, delta);
    for (const id of rec.conflictMatchedBy) this.conflicts.addMatch(id, rank, delta);
    if (!withReplaces) return;
    for (const id of rec.replaceIds) this.replaces.addHolder(id, rank, delta);
    for (const id of rec.replaceMatchedBy) this.replaces.addMatch(id, rank, delta);
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
