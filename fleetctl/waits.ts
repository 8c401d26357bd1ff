import { describeError, isFleetError } from '../lib/errors.js';
import { isSystemdActive } from '../unit/states.js';
import { pollUntil, type WaitResult } from './blocking.js';
import type { ApiMachine, ApiUnit } from './client.js';
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
  const client = ctx.client();
  let reported: string | undefined;
  const warned = new Set<string>();
  const result = await pollUntil<ApiUnit>(
    async () => {
      const read = await tolerant(ctx, name, warned, () => client.getUnit(name));
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
  const client = ctx.client();
  const machine = unit.machineID;
  const where = machine === undefined ? '' : ` on ${await machineLegend(ctx, machine)}`;
  const hint = `see "fleetctl status ${unit.name}"`;
  let inactiveSince: number | undefined;
  const warned = new Set<string>();
  const result = await pollUntil<true>(
    async () => {
      const read = await tolerant(ctx, unit.name, warned, () =>
        client.listUnitStates({ unitName: unit.name }),
      );
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
        inactiveSince ??= Date.now();
        if (Date.now() - inactiveSince >= ctx.timing.attemptMs) {
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
