import { FleetError } from '../lib/errors.js';
import { goQuote } from './unit-name.js';

/**
 * The unit state model: fleet's desired and current states (`job.JobState`), the systemd states an
 * agent reports, the commands that move a unit between desired states, and how the current state is
 * derived from what the engine and the agents wrote.
 */

// ---------------------------------------------------------------------------------------------
// Desired and current state

/** fleet's three unit states, in ladder order: each step up needs the one below. */
export const DESIRED_STATES = ['inactive', 'loaded', 'launched'] as const;

/**
 * What the user asked for (fleet's "target state"): `inactive` = known but not scheduled, `loaded` =
 * scheduled and loaded into systemd but not started, `launched` = loaded and started.
 */
export type DesiredState = (typeof DESIRED_STATES)[number];

/** The state fleet derives for a unit from the schedule and the agents' reports; the same words. */
export type CurrentState = DesiredState;

/** A unit's place in the command lifecycle: a desired state, or `none` (not submitted, or destroyed). */
export type UnitPresence = DesiredState | 'none';

/** The full ladder, lowest first. */
export const UNIT_PRESENCES: readonly UnitPresence[] = ['none', 'inactive', 'loaded', 'launched'];

/** The state a newly submitted unit gets when none is given. */
export const DEFAULT_DESIRED_STATE: DesiredState = 'inactive';

/** True for one of the three state words, exactly (fleet's check is case-sensitive). */
export function isDesiredState(value: unknown): value is DesiredState {
  return value === 'inactive' || value === 'loaded' || value === 'launched';
}

/** fleet's `ParseJobState` without the error: the state, or undefined for any other string. */
export function parseDesiredState(value: string): DesiredState | undefined {
  return isDesiredState(value) ? value : undefined;
}

/** fleet's message for a bad state word, with Go quoting: `invalid value "X" for JobState`. */
export function invalidDesiredStateMessage(value: string): string {
  return `invalid value ${goQuote(value)} for JobState`;
}

/**
 * Parses a state word or throws a `FleetError` with code `STATE_INVALID` and fleet's message. Unlike
 * fleet's API, which stored any string it was given, boundaries should reject bad values with this.
 */
export function parseDesiredStateOrThrow(value: string): DesiredState {
  const state = parseDesiredState(value);
  if (state === undefined) throw new FleetError('STATE_INVALID', invalidDesiredStateMessage(value));
  return state;
}

/** The position on the ladder: none 0, inactive 1, loaded 2, launched 3. */
export function presenceRank(state: UnitPresence): number {
  switch (state) {
    case 'none':
      return 0;
    case 'inactive':
      return 1;
    case 'loaded':
      return 2;
    case 'launched':
      return 3;
  }
}

/**
 * The states a unit passes through moving from `from` to `to`, one adjacent step at a time, ending
 * with `to` and excluding `from`: (`inactive`, `launched`) gives [`loaded`, `launched`] and
 * (`launched`, `none`) gives [`loaded`, `inactive`, `none`]. Empty when `from` equals `to`.
 */
export function transitionPath(from: UnitPresence, to: UnitPresence): UnitPresence[] {
  const end = presenceRank(to);
  const step = Math.sign(end - presenceRank(from));
  const path: UnitPresence[] = [];
  for (let rank = presenceRank(from); rank !== end;) {
    rank += step;
    const state = UNIT_PRESENCES[rank];
    if (state !== undefined) path.push(state);
  }
  return path;
}

// ---------------------------------------------------------------------------------------------
// Commands (fleet's Documentation/states.md)

/** The fleetctl commands that change a unit's desired state. */
export const UNIT_COMMANDS = ['submit', 'load', 'start', 'stop', 'unload', 'destroy'] as const;
export type UnitCommand = (typeof UNIT_COMMANDS)[number];

/** What one command means for the state model. */
export interface CommandRule {
  /** The state the command leaves the unit in; `none` for destroy. */
  readonly target: UnitPresence;
  /** The states the command may start from (states.md's "valid previous states"). */
  readonly validFrom: readonly UnitPresence[];
  /** The states in which the command has nothing left to do. */
  readonly doneIn: readonly UnitPresence[];
}

/**
 * The command table of fleet's states.md. `validFrom` is the documented column; `doneIn` adds what
 * fleetctl does when there is nothing to do: it skips a unit already in the target state, and
 * `submit` of a unit that exists changes nothing. Every other combination is invalid, e.g. `stop` on
 * an inactive unit (fleetctl: `Unable to stop unit X in state inactive`) or `load` on a launched unit
 * (the documented way down is `stop`; fleet's own fleetctl would quietly set `loaded` there).
 */
export const COMMAND_RULES: Readonly<Record<UnitCommand, CommandRule>> = {
  submit: { target: 'inactive', validFrom: ['none'], doneIn: ['inactive', 'loaded', 'launched'] },
  load: { target: 'loaded', validFrom: ['none', 'inactive'], doneIn: ['loaded'] },
  start: { target: 'launched', validFrom: ['none', 'inactive', 'loaded'], doneIn: ['launched'] },
  stop: { target: 'loaded', validFrom: ['launched'], doneIn: ['loaded'] },
  unload: { target: 'inactive', validFrom: ['launched', 'loaded'], doneIn: ['inactive'] },
  destroy: { target: 'none', validFrom: ['inactive', 'loaded', 'launched'], doneIn: ['none'] },
};

/** What a command does to a unit in a given state. */
export type CommandPlan =
  | {
      readonly kind: 'move';
      readonly command: UnitCommand;
      readonly from: UnitPresence;
      readonly target: UnitPresence;
      /** The states passed through, ending with `target` (see `transitionPath`). */
      readonly path: readonly UnitPresence[];
      readonly reason: string;
    }
  | {
      readonly kind: 'noop';
      readonly command: UnitCommand;
      readonly from: UnitPresence;
      readonly reason: string;
    }
  | {
      readonly kind: 'invalid';
      readonly command: UnitCommand;
      readonly from: UnitPresence;
      readonly reason: string;
    };

/** Decides what `command` does to a unit whose desired state is `from` (`none` when it does not exist). */
export function planCommand(command: UnitCommand, from: UnitPresence): CommandPlan {
  const rule = COMMAND_RULES[command];
  if (rule.doneIn.includes(from)) {
    const reason = from === 'none' ? 'unit does not exist' : `unit is already ${from}`;
    return { kind: 'noop', command, from, reason };
  }
  if (rule.validFrom.includes(from)) {
    const path = transitionPath(from, rule.target);
    return {
      kind: 'move',
      command,
      from,
      target: rule.target,
      path,
      reason: `${command}: ${from} -> ${path.join(' -> ')}`,
    };
  }
  const reason =
    from === 'none'
      ? `cannot ${command} a unit that does not exist`
      : `cannot ${command} a unit in state ${from}; valid from ${rule.validFrom.join(', ')}`;
  return { kind: 'invalid', command, from, reason };
}

// ---------------------------------------------------------------------------------------------
// Deriving the current state (fleet's registry/job_state.go determineJobState, in our model)

/**
 * What one agent published for a unit (its `state/<name>/<machine>` record, bound to the agent's
 * lease, so it vanishes when the agent dies).
 */
export interface AgentUnitReport {
  /** The machine whose agent wrote the record. */
  readonly machine: string;
  /**
   * True when that agent has started the unit because its schedule says `launched`, and holds it
   * there. This replaces fleet's separate `job-state` heartbeat key: a report whose lease is alive
   * and says `launched` is exactly "fleet called start and keeps heartbeating".
   */
  readonly launched: boolean;
}

/** The evidence the current state of a non-global unit is derived from. */
export interface CurrentStateEvidence {
  /** The machine the engine scheduled the unit on; undefined while it is unscheduled. */
  readonly scheduledMachine: string | undefined;
  /** Every live report for the unit; reports from machines other than the scheduled one are ignored. */
  readonly reports: readonly AgentUnitReport[];
}

/**
 * The current state of a non-global unit, by fleet's rules: not scheduled, or no report from the
 * scheduled machine, gives `inactive` (so a freshly scheduled unit reads `inactive` until its agent
 * reports); a report that says launched gives `launched`; any other report gives `loaded`.
 * `launched` means fleet started the unit, not that it runs: that is what the systemd states say.
 * Global units have no current state; callers do not ask (fleet's unit list shows them `inactive`).
 */
export function deriveCurrentState(evidence: CurrentStateEvidence): CurrentState {
  const { scheduledMachine, reports } = evidence;
  if (scheduledMachine === undefined) return 'inactive';
  const report = reports.find((r) => r.machine === scheduledMachine);
  if (report === undefined) return 'inactive';
  return report.launched ? 'launched' : 'loaded';
}

// ---------------------------------------------------------------------------------------------
// systemd's own states, as agents copy them from D-Bus

/** systemd's `LoadState` values. */
export const LOAD_STATES = [
  'stub',
  'loaded',
  'not-found',
  'bad-setting',
  'error',
  'merged',
  'masked',
] as const;
export type LoadState = (typeof LOAD_STATES)[number];

/** systemd's `ActiveState` values. */
export const ACTIVE_STATES = [
  'active',
  'reloading',
  'inactive',
  'failed',
  'activating',
  'deactivating',
  'maintenance',
  'refreshing',
] as const;
export type ActiveState = (typeof ACTIVE_STATES)[number];

/**
 * systemd's `SubState`: type-specific and open-ended (each unit type has its own list, and systemd
 * adds more), so it stays a string. `COMMON_SUB_STATES` lists the ones users meet most.
 */
export type SubState = string;

/** Frequent sub-states: services, sockets, timers, mounts, devices and paths. */
export const COMMON_SUB_STATES: readonly SubState[] = [
  'dead',
  'condition',
  'start-pre',
  'start',
  'start-post',
  'running',
  'exited',
  'reload',
  'stop',
  'stop-sigterm',
  'stop-sigkill',
  'stop-post',
  'final-sigterm',
  'final-sigkill',
  'failed',
  'auto-restart',
  'cleaning',
  'listening',
  'waiting',
  'elapsed',
  'mounted',
  'plugged',
  'tentative',
];

const LOAD_STATE_SET: ReadonlySet<string> = new Set(LOAD_STATES);
const ACTIVE_STATE_SET: ReadonlySet<string> = new Set(ACTIVE_STATES);

/**
 * Reads a `LoadState` string; undefined for a value this build does not know. Agents should publish
 * systemd's raw strings and interpret them with this, since newer systemd versions add values.
 */
export function parseLoadState(value: string): LoadState | undefined {
  return isLoadState(value) ? value : undefined;
}

/** Reads an `ActiveState` string; undefined for a value this build does not know. */
export function parseActiveState(value: string): ActiveState | undefined {
  return isActiveState(value) ? value : undefined;
}

/** True for a `LoadState` this build knows. */
export function isLoadState(value: string): value is LoadState {
  return LOAD_STATE_SET.has(value);
}

/** True for an `ActiveState` this build knows. */
export function isActiveState(value: string): value is ActiveState {
  return ACTIVE_STATE_SET.has(value);
}

/**
 * True when systemd reports the unit loaded and active: what `fleetctl start` waits for after the
 * unit reaches `launched` (`tryWaitForSystemdActiveState`).
 */
export function isSystemdActive(state: {
  readonly loadState: string;
  readonly activeState: string;
}): boolean {
  return state.loadState === 'loaded' && state.activeState === 'active';
}
