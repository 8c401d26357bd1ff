import { setTimeout as delay } from 'node:timers/promises';

import { systemClock } from '../lib/clock.js';
import { describeError, isFleetError } from '../lib/errors.js';
import { isSystemdActive } from '../unit/states.js';
import { pollUntil, type WaitResult } from './blocking.js';
import type { ApiMachine, ApiUnit, ApiUnitState } from './client.js';
import type { Context } from './context.js';
import { machineFullLegend } from './machines.js';
import { isGlobalUnit } from './unit-data.js';

/**
 * What blocking commands wait for: a unit's current state (fleet's `assertUnitState`), and after
 * `start` systemd's own `active` (fleet's `tryWaitForSystemdActiveState`, without its bug of
 * failing for good after the first 2 s window).
 */

/** The states a unit can be waited for. */
export type WantedState = 'inactive' | 'loaded' | 'launched';

type Read<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly why: string };

/**
 * Reads for a poll. A retryable failure (fleetd unreachable for a moment, etcd unavailable) does
 * not end the wait, as in fleet, which logged it and polled on: it is said once per distinct
 * message and becomes the reason shown if the attempts run out. Other failures are thrown.
 */
async function tolerant<T>(
  ctx: Context,
  name: string,
  warned: Set<string>,
  read: () => Promise<T>,
): Promise<Read<T>> {
  try {
    return { ok: true, value: await read() };
  } catch (err) {
    if (!isFleetError(err) || !err.retryable) throw err;
    const why = describeError(err);
    if (!warned.has(why)) {
      warned.add(why);
      ctx.warn(`Error retrieving Unit(${name}) from Registry: ${why}; still waiting`);
    }
    return { ok: false, why };
  }
}

/**
 * Many units waited for at once (a `start` of 100 units) poll in step: instead of one request per
 * unit and poll, the waits of one run share list requests (`GET /units`, `GET /state`), one per
 * poll for all of them. A read joins a list started at most `JOIN_MS` before it and not before its
 * own wait began, so nothing older than the wait is seen. Few waits, or a cluster whose lists are
 * much larger than what is waited for, keep the per-unit requests.
 */
const BATCH_FROM = 4;
/** Lists longer than this many entries per waiting unit are not worth sharing. */
const LIST_PER_WAITER = 50;
const JOIN_MS = 50;
/** How long a new shared list waits for more readers before it goes out. */
const GATHER_MS = 5;

interface SharedList<T> {
  /** When the request went out; undefined while the list still gathers readers. */
  started: number | undefined;
  readonly result: Promise<T>;
}

interface SharedReads {
  waiters: number;
  units?: SharedList<Map<string, ApiUnit>>;
  states?: SharedList<ApiUnitState[]>;
  /** The length of the last list read, to judge whether sharing lists pays. */
  listed: number;
}

const sharedReads = new WeakMap<Context, SharedReads>();

function sharedOf(ctx: Context): SharedReads {
  let shared = sharedReads.get(ctx);
  if (shared === undefined) {
    shared = { waiters: 0, listed: 0 };
    sharedReads.set(ctx, shared);
  }
  return shared;
}

function batching(shared: SharedReads): boolean {
  return shared.waiters >= BATCH_FROM && shared.listed <= shared.waiters * LIST_PER_WAITER;
}

/**
 * A list started at or after `notBefore` and at most JOIN_MS ago, one still gathering readers, or
 * a new one that gathers readers for GATHER_MS before it goes out: waits begin a few milliseconds
 * apart (as their previous steps' replies arrive), and each would otherwise need its own list.
 */
function joinList<T>(
  current: SharedList<T> | undefined,
  notBefore: number,
  read: () => Promise<T>,
): SharedList<T> {
  const now = systemClock.now();
  if (current !== undefined) {
    if (current.started === undefined) return current;
    if (current.started >= Math.max(notBefore, now - JOIN_MS)) return current;
  }
  const list: SharedList<T> = {
    started: undefined,
    result: delay(GATHER_MS).then(() => {
      list.started = systemClock.now();
      return read();
    }),
  };
  // Each reader awaits (and handles) the result; this only keeps an unawaited failure quiet.
  list.result.catch(() => undefined);
  return list;
}

async function readUnit(ctx: Context, name: string, notBefore: number): Promise<ApiUnit | undefined> {
  const shared = sharedOf(ctx);
  if (!batching(shared)) return ctx.client().getUnit(name);
  shared.units = joinList(shared.units, notBefore, async () => {
    const units = await ctx.client().listUnits();
    shared.listed = units.length;
    return new Map(units.map((u) => [u.name, u]));
  });
  return (await shared.units.result).get(name);
}

async function readStates(ctx: Context, name: string, notBefore: number): Promise<ApiUnitState[]> {
  const shared = sharedOf(ctx);
  if (!batching(shared)) return ctx.client().listUnitStates({ unitName: name });
  shared.states = joinList(shared.states, notBefore, async () => {
    const states = await ctx.client().listUnitStates();
    shared.listed = states.length;
    return states;
  });
  return (await shared.states.result).filter((s) => s.name === name);
}

/** Runs one wait, counted among the run's concurrent waits. */
async function counted<T>(ctx: Context, wait: (since: number) => Promise<T>): Promise<T> {
  const shared = sharedOf(ctx);
  shared.waiters++;
  try {
    return await wait(systemClock.now());
  } finally {
    shared.waiters--;
  }
}

/**
 * Waits until the unit's current state is `want` (for a global unit, which has no current state,
 * its desired state, as fleet does). While the engine reports the unit unplaceable, each new reason
 * is printed once to stderr, and the wait goes on as the attempts allow. Resolves with the unit as
 * last read; fails at once if the unit disappears.
 */
export async function waitForUnitState(
  ctx: Context,
  name: string,
  want: WantedState,
  attempts: number,
): Promise<WaitResult<ApiUnit>> {
  let reported: string | undefined;
  const warned = new Set<string>();
  const result = await counted(ctx, (since) =>
    pollUntil<ApiUnit>(
      async () => {
        const read = await tolerant(ctx, name, warned, () => readUnit(ctx, name, since));
        if (!read.ok) return { done: false, why: read.why };
        const unit = read.value;
        if (unit === undefined) return { done: false, fatal: true, why: `unit ${name} no longer exists` };
        const state = isGlobalUnit(unit.options) ? unit.desiredState : unit.currentState;
        if (state === want) return { done: true, value: unit };
        const reason = want === 'inactive' ? undefined : unit.unplaceableReason;
        if (reason !== undefined && reason !== reported) {
          ctx.err(`Unit ${name} cannot be placed: ${reason}`);
          reported = reason;
        }
        return reason === undefined ? { done: false } : { done: false, why: `cannot be placed: ${reason}` };
      },
      attempts,
      ctx.timing,
    ),
  );
  if (result.ok || !result.timedOut) return result;
  const tail = result.why === undefined ? '' : ` (${result.why})`;
  return {
    ok: false,
    timedOut: true,
    why: `timed out waiting for unit ${name} to report state ${want}${tail}`,
  };
}

/**
 * After a unit reached `launched`: waits until its machine's agent reports systemd `loaded` and
 * `active`. A `failed` unit ends the wait at once, and so does one that stays `inactive` for a whole
 * attempt (it ran and exited, or never started); anything else (`activating`, no report yet) is
 * waited for as long as the attempts allow, 0 meaning without limit.
 */
export async function waitForActive(
  ctx: Context,
  unit: ApiUnit,
  attempts: number,
): Promise<WaitResult<true>> {
  const machine = unit.machineID;
  const where = machine === undefined ? '' : ` on ${await machineLegend(ctx, machine)}`;
  const hint = `see "fleetctl status ${unit.name}"`;
  let inactiveSince: number | undefined;
  const warned = new Set<string>();
  const result = await counted(ctx, (since) =>
    pollUntil<true>(
      async () => {
        const read = await tolerant(ctx, unit.name, warned, () => readStates(ctx, unit.name, since));
        if (!read.ok) return { done: false, why: read.why };
        const states = read.value;
        const state = states.find((s) => machine === undefined || s.machineID === machine);
        if (state === undefined) return { done: false, why: 'no systemd state reported yet' };
        const load = state.systemdLoadState ?? '-';
        const active = state.systemdActiveState ?? '-';
        const sub = state.systemdSubState ?? '-';
        if (isSystemdActive({ loadState: load, activeState: active })) return { done: true, value: true };
        const says = `systemd reports ${load}/${active}/${sub}`;
        if (active === 'failed')
          return { done: false, fatal: true, why: `unit ${unit.name} failed${where}: ${says}; ${hint}` };
        if (active === 'inactive') {
          inactiveSince ??= systemClock.now();
          if (systemClock.now() - inactiveSince >= ctx.timing.attemptMs) {
            return {
              done: false,
              fatal: true,
              why: `unit ${unit.name} is not running${where}: ${says}; ${hint}`,
            };
          }
        } else {
          inactiveSince = undefined;
        }
        return { done: false, why: says };
      },
      attempts,
      ctx.timing,
    ),
  );
  if (result.ok || !result.timedOut) return result;
  const tail = result.why === undefined ? '' : `: ${result.why}`;
  return {
    ok: false,
    timedOut: true,
    why: `unit ${unit.name} did not become active${where}${tail}; ${hint}`,
  };
}

/**
 * `Unit X launched on m1234567.../10.0.0.1`; without ` on ...` when the unit has no machine, is
 * global, or is inactive (an inactive unit runs nowhere, even while still scheduled).
 */
export async function unitStateLine(ctx: Context, unit: ApiUnit, state: string): Promise<string> {
  if (unit.machineID === undefined || state === 'inactive' || isGlobalUnit(unit.options)) {
    return `Unit ${unit.name} ${state}`;
  }
  return `Unit ${unit.name} ${state} on ${await machineLegend(ctx, unit.machineID)}`;
}

/** The machine's legend; without its IP when the machine list cannot be read (it is only a label). */
async function machineLegend(ctx: Context, id: string): Promise<string> {
  let machine: ApiMachine | undefined;
  try {
    machine = await ctx.machines().get(id);
  } catch {
    machine = undefined;
  }
  return machineFullLegend(id, machine, false);
}
