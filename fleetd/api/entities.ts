import type {
  MachineRecord,
  Placement,
  StoredUnit,
  UnitOptionData,
  UnitStateRecord,
} from '../../registry/model.js';
import { deriveCurrentState, type CurrentState, type DesiredState } from '../../unit/states.js';

/**
 * The API's entities (fleet's `schema/v1.json`), built from registry records. Field names are
 * fleet's; `encodeEntity` sorts keys and drops empty fields on the way out.
 */

/** One unit file option (fleet's UnitOption). */
export interface UnitOptionEntity {
  readonly name: string;
  readonly section: string;
  readonly value: string;
}

/**
 * A unit (fleet's Unit), plus one extension: `unplaceableReason`, why the engine could not place
 * the unit at its last reconcile (absent when it could, or has not tried), so that clients can
 * say why a unit waits instead of waiting in silence.
 */
export interface UnitEntity {
  readonly currentState?: CurrentState;
  readonly desiredState: DesiredState;
  readonly machineID?: string;
  readonly name: string;
  readonly options: readonly UnitOptionEntity[];
  readonly unplaceableReason?: string;
}

/** What one agent reports for one unit (fleet's UnitState). */
export interface UnitStateEntity {
  readonly hash: string;
  readonly machineID: string;
  readonly name: string;
  readonly systemdActiveState: string;
  readonly systemdLoadState: string;
  readonly systemdSubState: string;
}

/** A live machine (fleet's Machine). */
export interface MachineEntity {
  readonly id: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly primaryIP: string;
}

/** What is known about a unit besides its record, to derive its current state. */
export interface UnitEvidence {
  /** Where the engine placed it, if anywhere. */
  readonly placement: Placement | undefined;
  /** The live reports of agents about it (any machine; only the placement's machine counts). */
  readonly states: readonly UnitStateRecord[];
  /** Why the engine could not place it, if it said so. */
  readonly unplaceableReason: string | undefined;
}

/**
 * How a unit is shown. fleet showed global units with `currentState: "inactive"` in the unit list
 * but without any current state in a single-unit GET (it skipped the schedule lookup there;
 * docs/fleet-compat.md §3.2). fleetctl relies on both, so both views are kept.
 */
export type UnitView = 'list' | 'single';

function optionEntity(o: UnitOptionData): UnitOptionEntity {
  return { name: o.name, section: o.section, value: o.value };
}

/**
 * The Unit entity: options in canonical order (as stored), `currentState` derived by fleet's rules
 * (3.2) from the placement and the scheduled machine's report, `machineID` from the placement.
 */
export function unitEntity(stored: StoredUnit, evidence: UnitEvidence, view: UnitView): UnitEntity {
  const { unit, desiredState } = stored;
  const base = {
    desiredState,
    name: unit.name,
    options: unit.options.map(optionEntity),
    unplaceableReason: evidence.unplaceableReason,
  };
  if (unit.fleet.global) return view === 'list' ? { ...base, currentState: 'inactive' } : base;
  const machine = evidence.placement?.machine;
  const currentState = deriveCurrentState({
    scheduledMachine: machine,
    reports: evidence.states
      .filter((s) => s.unit === unit.name)
      .map((s) => ({ machine: s.machine, launched: s.launched })),
  });
  return { ...base, currentState, machineID: machine };
}

/** The UnitState entity of one agent's report. */
export function unitStateEntity(s: UnitStateRecord): UnitStateEntity {
  return {
    hash: s.hash,
    machineID: s.machine,
    name: s.unit,
    systemdActiveState: s.activeState,
    systemdLoadState: s.loadState,
    systemdSubState: s.subState,
  };
}

/** The Machine entity: metadata as merged by the registry (API-set values win). */
export function machineEntity(m: MachineRecord): MachineEntity {
  return { id: m.id, metadata: m.metadata, primaryIP: m.publicIp };
}
