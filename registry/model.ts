import type { FleetOptions } from '../unit/fleet-options.js';
import type { DesiredState } from '../unit/states.js';

/** One option of a unit file as stored and as the HTTP API shows it (fleet's UnitOption). */
export interface UnitOptionData {
  readonly section: string;
  readonly name: string;
  readonly value: string;
}

/**
 * A submitted unit's immutable part: its contents (options in canonical order), their hash and
 * the parsed [X-Fleet] options. Only a replace changes it.
 */
export interface UnitRecord {
  readonly name: string;
  readonly hash: string;
  readonly options: readonly UnitOptionData[];
  readonly fleet: FleetOptions;
  /**
   * Where the unit came from, when not from the API: `drop:<machine ID>:<absolute path>` for a
   * file in a machine's unit drop folder (agent/unit-drop-watcher.ts), which only that folder's
   * watcher replaces or destroys. Absent for units submitted through the API (fleetctl), and a
   * replace through the API drops it. Not part of the hash: the same contents are the same unit.
   */
  readonly origin?: string;
}

/** A unit with the state the user wants for it. */
export interface StoredUnit {
  readonly unit: UnitRecord;
  readonly desiredState: DesiredState;
}

/**
 * The engine's decision that a unit runs on a machine: what the machine's agent reads. It carries
 * the unit's hash (so the agent notices a replace) and the desired state (loaded or launched).
 */
export interface Placement {
  readonly unit: string;
  readonly machine: string;
  readonly hash: string;
  readonly desiredState: DesiredState;
}

/** A live machine, as its agent announces it (bound to the agent's lease). */
export interface MachineRecord {
  readonly id: string;
  readonly publicIp: string;
  /** Configured metadata merged with metadata set through the API (API wins). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly version: string;
  /**
   * The kernel boot ID of the fleetd that announced it. With the public IP it tells a restarted
   * fleetd on the same machine (which takes the presence over) from a second machine that has
   * the same machine ID (which is refused).
   */
  readonly bootId?: string;
}

/** What an agent reports for one unit it runs (bound to the agent's lease). */
export interface UnitStateRecord {
  readonly unit: string;
  readonly machine: string;
  readonly hash: string;
  readonly loadState: string;
  readonly activeState: string;
  readonly subState: string;
  /** True when the agent has started the unit (fleet's job-state heartbeat). */
  readonly launched: boolean;
  /** When the agent saw this state, ms since the epoch. */
  readonly updatedAt: number;
}

/** How a submit ended. A conflict is a value: a different unit already has the name. */
export type SubmitResult =
  | { readonly kind: 'created' }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'replaced'; readonly previousHash: string }
  | { readonly kind: 'conflict'; readonly existingHash: string };

/** One change the engine writes to the schedule. */
export type ScheduleWrite =
  | { readonly kind: 'put'; readonly placement: Placement }
  | { readonly kind: 'delete'; readonly unit: string; readonly machine: string };

/**
 * A machine's maintenance mark (`fleetctl drain`): the machine takes no new units (global units
 * excepted) and the engine moves its units off, at most `maxParallel` at a time. Written through
 * the API; it stays until `fleetctl undrain` removes it, across fleetd restarts and leader changes.
 */
export interface DrainMark {
  readonly machine: string;
  /** How many units may be moving (stopped here, not yet active elsewhere) at once; >= 1. */
  readonly maxParallel: number;
  /** Stop units that cannot move instead of leaving them running. */
  readonly force: boolean;
  /** When the drain was asked for, ms since the epoch. */
  readonly requestedAt: number;
}

/** Where one unit's move off a draining machine stands. */
export type DrainMovePhase =
  /** Unscheduled from the draining machine, waiting until its agent reports it stopped. */
  | 'stopping'
  /** Stopped there, placed elsewhere, waiting until it is active there. */
  | 'starting';

/** A unit of a draining machine and why it stays (or, with force, why it was stopped). */
export interface DrainHeldUnit {
  readonly unit: string;
  readonly reason: string;
}

/**
 * How a drain is going, written by the leading engine (fenced by leadership) for the API and
 * fleetctl, and read back by the next leader so a drain goes on where it was.
 */
export interface DrainProgress {
  /** `drained` once nothing is moving and nothing movable is left on the machine. */
  readonly state: 'draining' | 'drained';
  /** Units being moved, by name. */
  readonly moving: Readonly<Record<string, DrainMovePhase>>;
  /** Units moved off and active elsewhere (or loaded elsewhere, for loaded units), by name. */
  readonly moved: readonly string[];
  /** Units that cannot move and keep running here, by name. */
  readonly stuck: readonly DrainHeldUnit[];
  /** Units that cannot move and were stopped because the drain was forced, by name. */
  readonly forced: readonly DrainHeldUnit[];
  /** Units that moved but failed to start where they went, by name. */
  readonly failed: readonly DrainHeldUnit[];
}

/** A drain mark with the engine's progress on it (absent until the engine first looked). */
export interface DrainRecord {
  readonly mark: DrainMark;
  readonly progress?: DrainProgress;
}
