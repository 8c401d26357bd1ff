import type { FleetOptions } from '../unit/fleet-options.js';
import type { DesiredState } from '../unit/states.js';

/**
 * The scheduler's input: what the engine read from the registry in one reconcile (fleet's
 * `engine/state.go` cluster state). Plain data; the scheduler never mutates it.
 */

/**
 * A unit as the scheduler sees it. A parsed `Unit` plus its desired state fits this shape. Global
 * units are included too: the engine never places them, but they count as load and take part in
 * Conflicts and MachineOf on the machines whose agents will run them.
 */
export interface SchedulableUnit {
  readonly name: string;
  /** The unit hash, passed through to schedule changes so the writer can record it. */
  readonly hash: string;
  readonly desiredState: DesiredState;
  readonly fleet: FleetOptions;
}

/** A live machine: one whose presence key exists (bound to its agent's lease). */
export interface MachineInfo {
  readonly id: string;
  /** Static and dynamic metadata; values compare exactly and case-sensitively, as in fleet. */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * True while the machine is being drained (engine/drain-plan.ts): no unit is placed there, but
   * the units already there stay until the drain moves them. Global units are not affected.
   */
  readonly unschedulable?: boolean;
}

/** One consistent view of the cluster. */
export interface ClusterSnapshot {
  /** Every submitted unit, global ones included. Names are unique; a repeated name is ignored. */
  readonly units: readonly SchedulableUnit[];
  /** The live machines. IDs are unique; a repeated ID is ignored. */
  readonly machines: readonly MachineInfo[];
  /**
   * The current schedule: unit name -> machine ID. Entries may name units that no longer exist,
   * machines that went away, or global and inactive units; the plan removes those.
   */
  readonly schedule: ReadonlyMap<string, string>;
  /**
   * Where units that are not scheduled now ran last (unit -> machine ID), as far as the engine
   * remembers: a unit placed again goes back there when that machine can still run it, so that a
   * replace (which passes through `inactive`) or a stop and start moves nothing. Optional.
   */
  readonly previous?: ReadonlyMap<string, string>;
}

/**
 * The order of machine IDs and unit names everywhere in the scheduler: by UTF-16 code unit, which
 * for the ASCII names fleet allows is fleet's byte-wise Go string order.
 */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * fleet's `MachineState.MatchID`: a MachineID value names a machine by its full ID or by exactly
 * its 8-character short ID (the docs ask for the full ID; fleet accepted both, and so do we).
 */
export function machineIdMatches(machineId: string, value: string): boolean {
  return machineId === value || machineId.slice(0, 8) === value;
}
