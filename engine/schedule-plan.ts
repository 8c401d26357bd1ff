import type { DesiredState } from '../unit/states.js';

/**
 * The scheduler's output: the schedule changes to write, in order, and the units that could not
 * be placed, each with a structured cause and a readable reason for the API and the CLI. Plain
 * data; the plan-then-apply idiom of fleet's reconcilers, with typed tasks instead of strings.
 */

/** The desired states a scheduled unit can have (an `inactive` unit is never scheduled). */
export type ScheduledState = Exclude<DesiredState, 'inactive'>;

/** One write to the schedule. A move is an `unschedule` followed, later in the list, by a `schedule`. */
export type ScheduleChange =
  | {
      readonly kind: 'unschedule';
      readonly unit: string;
      /** The machine the unit leaves. */
      readonly machine: string;
      readonly reason: string;
    }
  | {
      readonly kind: 'schedule';
      readonly unit: string;
      readonly machine: string;
      readonly hash: string;
      readonly desiredState: ScheduledState;
      readonly reason: string;
    };

/**
 * One constraint that ruled out some machines for a unit, with every machine it ruled out (IDs
 * ascending). A machine is reported under the first constraint it fails, in fleet's `AbleToRun`
 * order (MachineID, MachineMetadata, MachineOf, Conflicts, Replaces), after our own first check:
 * a draining machine takes no new units.
 */
export type Exclusion =
  /** The machines are draining (`fleetctl drain`) and take no new units. */
  | { readonly constraint: 'Draining'; readonly machines: readonly string[] }
  | { readonly constraint: 'MachineID'; readonly value: string; readonly machines: readonly string[] }
  | {
      readonly constraint: 'MachineMetadata';
      readonly key: string;
      /** The accepted values; the machine lacks the key or has another value. */
      readonly values: readonly string[];
      readonly machines: readonly string[];
    }
  | {
      readonly constraint: 'MachineOf';
      /** The peer that is not on those machines. */
      readonly peer: string;
      readonly machines: readonly string[];
    }
  | {
      readonly constraint: 'Conflicts';
      readonly pattern: string;
      /**
       * `own`: the pattern is this unit's and matches `units` there. `theirs`: `units` there hold
       * the pattern and it matches this unit (Conflicts work both ways).
       */
      readonly side: 'own' | 'theirs';
      readonly units: readonly string[];
      readonly machines: readonly string[];
    }
  | {
      readonly constraint: 'Replaces';
      /** A Replaces pattern of `units` there that matches this unit. */
      readonly pattern: string;
      readonly units: readonly string[];
      readonly machines: readonly string[];
    };

/** The constraint kinds of `Exclusion`, in the order they are checked. */
export const CONSTRAINT_ORDER: readonly Exclusion['constraint'][] = [
  'Draining',
  'MachineID',
  'MachineMetadata',
  'MachineOf',
  'Conflicts',
  'Replaces',
];

/** One edge of a MachineOf or Replaces cycle: `unit` follows (MachineOf) or replaces `other`. */
export interface CycleEdge {
  readonly unit: string;
  readonly constraint: 'MachineOf' | 'Replaces';
  readonly other: string;
}

/** Why a unit stays unscheduled. */
export type UnplaceableCause =
  | { readonly kind: 'no-machines' }
  | { readonly kind: 'excluded'; readonly exclusions: readonly Exclusion[] }
  | {
      readonly kind: 'peer-unavailable';
      readonly peer: string;
      /** `missing`: no such unit; `inactive`: its desired state is inactive; `unplaceable` or
       * `rejected`: it could not be placed itself. */
      readonly peerState: 'missing' | 'inactive' | 'unplaceable' | 'rejected';
    }
  | {
      readonly kind: 'cycle';
      readonly constraint: 'MachineOf' | 'Replaces' | 'MachineOf and Replaces';
      /** Every unit of the cycle (a strongly connected group), ascending. */
      readonly units: readonly string[];
      readonly edges: readonly CycleEdge[];
      /** The units of the cycle that are kept (placed as usual), ascending; the others are left out. */
      readonly kept: readonly string[];
    };

/** A unit that wants to run but has no machine. */
export interface Unplaceable {
  readonly unit: string;
  /** For people: `no machine can run it: MachineMetadata region=us-east excludes m1, m2; ...`. */
  readonly reason: string;
  readonly cause: UnplaceableCause;
}

/** What a scheduling pass decided. */
export interface SchedulePlan {
  /** Unschedules first (by unit name), then schedules in the order they were decided. */
  readonly changes: readonly ScheduleChange[];
  /** Units left unscheduled although their desired state is not inactive, by name. */
  readonly unplaceable: readonly Unplaceable[];
}

/** Returns `schedule` (unit -> machine) with `changes` applied, as the writer would leave it. */
export function applyChanges(
  schedule: ReadonlyMap<string, string>,
  changes: readonly ScheduleChange[],
): Map<string, string> {
  const next = new Map(schedule);
  for (const change of changes) {
    switch (change.kind) {
      case 'unschedule':
        if (next.get(change.unit) === change.machine) next.delete(change.unit);
        break;
      case 'schedule':
        next.set(change.unit, change.machine);
        break;
    }
  }
  return next;
}

const LISTED = 5;

/** `a, b, c`, or `a, b, c, d, e and 7 more` for long lists. */
export function formatList(items: readonly string[], limit = LISTED): string {
  if (items.length <= limit) return items.join(', ');
  return `${items.slice(0, limit).join(', ')} and ${items.length - limit} more`;
}

/** The constraint as a user wrote it: `MachineMetadata region=us-east|us-west`, `Conflicts web@*.service`. */
export function constraintLabel(exclusion: Exclusion): string {
  switch (exclusion.constraint) {
    case 'Draining':
      return 'draining';
    case 'MachineID':
      return `MachineID ${exclusion.value}`;
    case 'MachineMetadata':
      return `MachineMetadata ${exclusion.key}=${exclusion.values.join('|')}`;
    case 'MachineOf':
      return `MachineOf ${exclusion.peer}`;
    case 'Conflicts':
      return exclusion.side === 'own'
        ? `Conflicts ${exclusion.pattern}`
        : `Conflicts ${exclusion.pattern} of ${formatList(exclusion.units, 3)}`;
    case 'Replaces':
      return `Replaces ${exclusion.pattern} of ${formatList(exclusion.units, 3)}`;
  }
}

/** `Conflicts web@*.service excludes m1, m2`. */
export function describeExclusion(exclusion: Exclusion): string {
  return `${constraintLabel(exclusion)} excludes ${formatList(exclusion.machines)}`;
}

/** `a.service replaces b.service, b.service replaces a.service`. */
export function describeCycle(edges: readonly CycleEdge[]): string {
  const words = edges.map(
    (e) => `${e.unit} ${e.constraint === 'Replaces' ? 'replaces' : 'follows'} ${e.other}`,
  );
  return formatList(words, 6);
}

function describePeerState(state: 'missing' | 'inactive' | 'unplaceable' | 'rejected'): string {
  switch (state) {
    case 'missing':
      return 'does not exist';
    case 'inactive':
      return 'has desired state inactive';
    case 'unplaceable':
      return 'could not be placed';
    case 'rejected':
      return 'is left out of a MachineOf or Replaces cycle';
  }
}

/** The readable reason for an unplaceable cause. */
export function describeUnplaceable(cause: UnplaceableCause): string {
  switch (cause.kind) {
    case 'no-machines':
      return 'no machines in the cluster';
    case 'excluded':
      return `no machine can run it: ${cause.exclusions.map(describeExclusion).join('; ')}`;
    case 'peer-unavailable':
      return `MachineOf peer ${cause.peer} ${describePeerState(cause.peerState)}`;
    case 'cycle': {
      const text = `${cause.constraint} cycle: ${describeCycle(cause.edges)}`;
      return cause.kept.length === 0 ? text : `${text}; kept ${formatList(cause.kept, 3)}`;
    }
  }
}
