/**
 * Cluster events: what the engine and the agents decided and observed, kept in etcd for a bounded
 * time and count (registry `EventStore`) and read with `fleetctl events` and `GET /fleet/v1/events`.
 * An event is a fact for a human: a time, a kind, the unit and machine where they apply, and a
 * message that says why (`moved from m1 to m2: machine m1 lost`).
 */

/** Every kind of event, in the order `fleetctl events --help` lists them. */
export const EVENT_KINDS = [
  // The engine's decisions.
  'placed',
  'moved',
  'unplaceable',
  'unscheduled',
  // What an agent did and saw of systemd.
  'started',
  'stopped',
  'failed',
  'exited',
  'adopted',
  // Machines and the leader.
  'machine-joined',
  'machine-left',
  'machine-lost',
  'leader-changed',
] as const;

export type ClusterEventKind = (typeof EVENT_KINDS)[number];

/** What a component records; the recorder adds the time and who reported it. */
export interface ClusterEventInput {
  readonly kind: ClusterEventKind;
  /** The unit it is about, when it is about one. */
  readonly unit?: string;
  /** The machine where it applies (the unit's machine, the machine that joined, ...). */
  readonly machine?: string;
  /** One line for a human, saying why. */
  readonly message: string;
}

/** An event as stored. */
export interface ClusterEvent extends ClusterEventInput {
  /** When it happened, ms since the epoch, by the reporter's clock. */
  readonly time: number;
  /** The machine whose fleetd recorded it. */
  readonly reporter: string;
}

/** An event read back: with its store identity and the revision it was written at. */
export interface StoredClusterEvent extends ClusterEvent {
  /** Unique and sorting by time: what pages and `--follow` resume after. */
  readonly id: string;
  /** The store revision that wrote it (etcd's mod revision); replays start after one. */
  readonly revision: number;
}

/** Where events go. Recording never throws and never waits: a recorder batches and writes later. */
export interface EventSink {
  record(event: ClusterEventInput): void;
}

/** A sink that drops everything: the default wherever events are not wanted. */
export const NO_EVENTS: EventSink = { record: () => undefined };

/** True for a known kind. */
export function isEventKind(text: string): text is ClusterEventKind {
  return (EVENT_KINDS as readonly string[]).includes(text);
}

/** Which events a reader wants; every field narrows, absent fields do not. */
export interface EventFilter {
  readonly units?: readonly string[];
  readonly machine?: string;
  readonly kinds?: readonly ClusterEventKind[];
  /** Only events at or after this time (ms since the epoch). */
  readonly since?: number;
  /** Only events written after this store revision. */
  readonly afterRevision?: number;
}

/** Whether `event` passes `filter`. */
export function matchesEvent(event: StoredClusterEvent, filter: EventFilter): boolean {
  if (filter.units !== undefined && filter.units.length > 0) {
    if (event.unit === undefined || !filter.units.includes(event.unit)) return false;
  }
  if (filter.machine !== undefined && event.machine !== filter.machine) return false;
  if (filter.kinds !== undefined && filter.kinds.length > 0 && !filter.kinds.includes(event.kind))
    return false;
  if (filter.since !== undefined && event.time < filter.since) return false;
  if (filter.afterRevision !== undefined && event.revision <= filter.afterRevision) return false;
  return true;
}

/** Events in the order readers see them: by time, then by id. */
export function compareEvents(a: StoredClusterEvent, b: StoredClusterEvent): number {
  return a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * A unit moved from one machine to another, and why (`machine m1 lost`, `Replaces`, `drain`).
 * The one builder every mover (the engine, a drain) uses, so the messages read alike.
 */
export function unitMoved(unit: string, from: string, to: string, why: string): ClusterEventInput {
  return { kind: 'moved', unit, machine: to, message: `moved from ${from} to ${to}: ${why}` };
}
