import type { ClusterEvent, EventFilter, StoredClusterEvent } from '../unit/cluster-events.js';
import type { DesiredState } from '../unit/states.js';
import type { EventRetention } from './event-retention.js';
import type {
  DrainMark,
  DrainProgress,
  DrainRecord,
  MachineRecord,
  Placement,
  ScheduleWrite,
  StoredUnit,
  SubmitResult,
  UnitRecord,
  UnitStateRecord,
} from './model.js';

/**
 * The registry, split by role (docs/style.md): each component asks for the narrowest interface it
 * needs. Two implementations pass one contract suite (spec/contracts/): `EtcdRegistry` on etcd v3
 * and `InMemoryRegistry`.
 *
 * Common contract:
 * - Reads return values; absence is `undefined` or an empty list, never an exception.
 * - A store that cannot be reached fails with `FleetError('REGISTRY_UNAVAILABLE', retryable)`
 *   after the call's timeout; a stored value that cannot be decoded with
 *   `FleetError('REGISTRY_CORRUPT')`.
 * - Lists are sorted: units by name, machines by ID, placements by (machine, unit), states by
 *   (unit, machine).
 * - Watches only tell that something under their scope changed (callers re-read: level-based);
 *   a burst may be delivered as fewer calls. They deliver changes made after the returned promise
 *   resolves, and keep going across connection loss (re-establishing and firing once after).
 */

/** A live watch; `close()` stops it and is idempotent. */
export interface Subscription {
  close(): Promise<void>;
}

/** Called when something in a watched scope changed. Must not throw. */
export type ChangeListener = () => void;

/** Units and their desired states: written by the API, read by the engine and the API. */
export interface UnitStore {
  /**
   * Submits a unit with its desired state in one transaction. A unit with the same name and hash
   * is `unchanged` (nothing written). A different unit under the name is a `conflict`, unless
   * `replace` is set: then contents and desired state are replaced (`replaced`).
   */
  submitUnit(
    unit: UnitRecord,
    desiredState: DesiredState,
    options?: { replace?: boolean },
  ): Promise<SubmitResult>;
  getUnit(name: string): Promise<StoredUnit | undefined>;
  listUnits(): Promise<StoredUnit[]>;
  /** Sets the desired state; false when no such unit exists. Idempotent. */
  setDesiredState(name: string, state: DesiredState): Promise<boolean>;
  /**
   * Removes everything about a unit in one transaction: contents, desired state, global entry,
   * placement, schedule entry, unplaceable reason and every machine's state record. False when it did not exist.
   */
  destroyUnit(name: string): Promise<boolean>;
  /** Fires when any unit's contents or desired state change (what the engine reacts to). */
  watchUnits(onChange: ChangeListener): Promise<Subscription>;
}

/** Global units, which every eligible agent runs on its own: read by agents. */
export interface GlobalUnitStore {
  listGlobalUnits(): Promise<StoredUnit[]>;
  watchGlobalUnits(onChange: ChangeListener): Promise<Subscription>;
}

/** The engine's decisions. */
export interface ScheduleStore {
  /** Every placement in the cluster (the engine's view). */
  listSchedule(): Promise<Placement[]>;
  /** Where one unit is scheduled, or undefined. */
  getPlacement(unit: string): Promise<Placement | undefined>;
  /** The placements of one machine (an agent's view). */
  machineSchedule(machine: string): Promise<Placement[]>;
  /** Fires when the schedule of `machine` changes, and only then. */
  watchMachineSchedule(machine: string, onChange: ChangeListener): Promise<Subscription>;
  /**
   * Applies schedule changes atomically, only while `leadership` is still held: the transaction
   * itself checks it, so a deposed leader can never overwrite a newer decision. Returns false,
   * writing nothing, when leadership was lost. A put also records the unit's placement; a delete
   * removes it (only if it still names that machine).
   */
  applySchedule(writes: readonly ScheduleWrite[], leadership: Leadership): Promise<boolean>;
  /**
   * Records why units cannot be placed (`set`: unit -> reason) and forgets the reasons of units
   * that can be placed again or are gone (`clear`), fenced by leadership like applySchedule.
   * Returns false, writing nothing, when leadership was lost.
   */
  recordUnplaceable(
    update: { readonly set: ReadonlyMap<string, string>; readonly clear: readonly string[] },
    leadership: Leadership,
  ): Promise<boolean>;
  /** Why the engine could not place a unit at its last reconcile, or undefined. */
  getUnplaceable(unit: string): Promise<string | undefined>;
  /** Every recorded reason, unit -> reason. */
  listUnplaceable(): Promise<Map<string, string>>;
}

/** A machine's presence, bound to one lease with its unit states. */
export interface MachinePresence {
  readonly machine: string;
  /** True once the lease expired or was revoked: the record and states are gone. */
  readonly lost: boolean;
  /** Rewrites the machine record under the same lease. */
  update(record: MachineRecord): Promise<void>;
  /** Publishes one unit's state under this presence's lease. */
  publishUnitState(state: UnitStateRecord): Promise<void>;
  /** Removes one unit's state of this machine; idempotent. */
  removeUnitState(unit: string): Promise<void>;
  /** Calls `listener` once when the lease is lost (expired, revoked elsewhere). */
  onLost(listener: () => void): void;
  /** Revokes the lease: the machine record and its states vanish at once. Idempotent. */
  close(): Promise<void>;
}

/** Live machines. */
export interface MachineStore {
  /**
   * Announces a machine under a new lease of `ttlSeconds`, kept alive until `close()`. A live
   * record of an earlier run of the same fleetd (same `bootId`, non-empty, and same public IP)
   * is taken over: the record moves to the new lease in one step (the machine never looks gone)
   * and the old lease is revoked. Fails with `FleetError('MACHINE_ID_IN_USE')` when any other
   * live presence holds the same machine ID.
   */
  announceMachine(record: MachineRecord, ttlSeconds: number): Promise<MachinePresence>;
  /** Live machines, metadata merged with the metadata set through the API. */
  listMachines(): Promise<MachineRecord[]>;
  watchMachines(onChange: ChangeListener): Promise<Subscription>;
  /**
   * Applies metadata changes made through the API (a value sets a key, `undefined` removes it,
   * hiding a configured key too) all at once, and only while every machine they name is live:
   * returns the IDs of the machines that are not (sorted), and then changes nothing. An empty
   * answer means every change is stored. One etcd transaction: at most MAX_METADATA_CHANGES
   * changes, naming at most as many machines (more is a programming error: `INTERNAL`).
   */
  changeMachineMetadata(changes: readonly MetadataChange[]): Promise<string[]>;
}

/** One metadata change of `MachineStore.changeMachineMetadata`. */
export interface MetadataChange {
  readonly machine: string;
  readonly key: string;
  /** The value to set, or undefined to remove the key. */
  readonly value: string | undefined;
}

/** The most changes one `changeMachineMetadata` takes (etcd's default limit of transaction operations). */
export const MAX_METADATA_CHANGES = 128;

/** What agents report. */
export interface UnitStateStore {
  listUnitStates(filter?: { readonly machine?: string; readonly unit?: string }): Promise<UnitStateRecord[]>;
}

/** A read of events: oldest first, and the store revision they were read at. */
export interface EventRead {
  readonly events: StoredClusterEvent[];
  /** Resume a replay or follow after this revision to see only later events. */
  readonly revision: number;
}

/**
 * The cluster's event history (unit/cluster-events.ts): written by the engine and agents through
 * an EventRecorder, read by the API. Bounded by age (every event expires with its bucket's lease,
 * event-retention.ts) and by count (`trimEvents`, which the leader runs now and then).
 */
export interface EventStore {
  /**
   * Writes events, many per request (one transaction per up to 100). Each expires between
   * `retention.maxAgeMs` and one bucket after that. Idempotent per event id only by accident: a
   * retried write may store an event twice.
   */
  recordEvents(events: readonly ClusterEvent[], retention: EventRetention): Promise<void>;
  /**
   * The events still kept that pass `filter`, sorted by time then id. With
   * `filter.afterRevision`, only events written after that revision: what a replay resumes with,
   * and it works the same after the store compacted its history (live events stay readable).
   */
  listEvents(filter?: EventFilter): Promise<EventRead>;
  /** Fires when events are written (level-based: re-read with `afterRevision`). */
  watchEvents(onChange: ChangeListener): Promise<Subscription>;
  /** Deletes the oldest events beyond `maxCount`; returns how many went. */
  trimEvents(maxCount: number): Promise<number>;
}

/**
 * Machine maintenance marks (`fleetctl drain`): the API sets and clears them, the engine reads
 * them and records its progress. Marks are not bound to any lease: they survive fleetd restarts,
 * leader changes and the machine itself going away, until cleared.
 */
export interface DrainStore {
  /**
   * Marks a machine draining, or changes the options of its drain (its progress is kept).
   * Idempotent. Any machine ID is accepted (a machine may be marked before it joins).
   */
  setDrain(mark: DrainMark): Promise<void>;
  /** Removes a machine's mark and progress (undrain). False when it had no mark. */
  clearDrain(machine: string): Promise<boolean>;
  getDrain(machine: string): Promise<DrainRecord | undefined>;
  /** Every mark with its progress, sorted by machine ID. */
  listDrains(): Promise<DrainRecord[]>;
  /**
   * Records the engine's progress on a drain, only while `leadership` is held and the machine is
   * still marked (an undrain in between wins: nothing is written). Returns false, writing nothing,
   * when leadership was lost.
   */
  recordDrainProgress(machine: string, progress: DrainProgress, leadership: Leadership): Promise<boolean>;
  /** Fires when a mark is set or cleared, or progress is recorded. */
  watchDrains(onChange: ChangeListener): Promise<Subscription>;
}

/** Proof of leadership, checked inside every schedule transaction. */
export interface Leadership {
  readonly candidate: string;
  /** True once leadership is gone (lease lost or resigned). */
  readonly lost: boolean;
  /** Calls `listener` once when leadership is lost. */
  onLost(listener: () => void): void;
  /** Gives leadership up (deletes the leader key) so another engine takes over at once. */
  resign(): Promise<void>;
}

/** Leader election among engines. */
export interface LeaderElection {
  /**
   * Waits until `candidate` leads, holding a lease of `ttlSeconds`; resolves with the proof.
   * Rejects with `FleetError('ABORTED')` when `signal` aborts first.
   */
  campaign(candidate: string, ttlSeconds: number, signal: AbortSignal): Promise<Leadership>;
  /** The current leader's candidate ID, or undefined. */
  currentLeader(): Promise<string | undefined>;
}

import type { OutputRelay } from './output-relay.js';

/** Everything, for the composition root; components take the narrow roles above. */
export interface Registry
  extends
    UnitStore,
    GlobalUnitStore,
    ScheduleStore,
    MachineStore,
    UnitStateStore,
    LeaderElection,
    OutputRelay,
    EventStore,
    DrainStore {
  /** Closes watches, presences and connections. Idempotent. */
  close(): Promise<void>;
}
