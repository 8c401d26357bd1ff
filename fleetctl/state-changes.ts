import { mapLimit } from '../lib/concurrency.js';
import { describeError } from '../lib/errors.js';
import { isDesiredState, planCommand, type DesiredState } from '../unit/states.js';
import { NO_BLOCK, REQUEST_CONCURRENCY, type WaitResult } from './blocking.js';
import type { ApiUnit } from './client.js';
import type { Context } from './context.js';
import { isGlobalUnit } from './unit-data.js';
import { unitStateLine, waitForActive, waitForUnitState, type WantedState } from './waits.js';

/**
 * Moving units to a desired state and waiting for them, shared by load, start, stop and unload
 * (fleet's `setTargetStateOfUnits` + `tryWaitForUnitStates`). Whether a move is valid follows the
 * state table of fleet's states.md (unit/states.ts), judged on the desired state: `stop` of an
 * inactive unit is refused, a unit already there is left alone but still reported. Global units
 * follow the same table, are triggered and never waited for, as in fleet.
 */

/** The commands that move units between desired states. */
export type StateCommand = 'load' | 'start' | 'stop' | 'unload';

const TARGET: Readonly<Record<StateCommand, DesiredState & WantedState>> = {
  load: 'loaded',
  start: 'launched',
  stop: 'loaded',
  unload: 'inactive',
};

const GERUND: Readonly<Record<StateCommand, string>> = {
  load: 'loading',
  start: 'starting',
  stop: 'stopping',
  unload: 'unloading',
};

/** How the change went: false when anything failed; `waited` lists the units that reached the state. */
export interface ChangeResult {
  readonly ok: boolean;
  readonly waited: readonly string[];
}

/**
 * Sets the desired state `command` implies on each named unit that exists, then (unless
 * `attempts` is `NO_BLOCK`) waits for the non-global ones, printing `Unit X <state> on <machine>`
 * in argument order. `start` then waits for systemd to report the unit active. Messages on
 * stderr say what failed; nothing throws for a unit's own failure.
 */
export async function changeUnitStates(
  ctx: Context,
  units: readonly ApiUnit[],
  command: StateCommand,
  attempts: number,
): Promise<ChangeResult> {
  const client = ctx.client();
  const target = TARGET[command];
  let ok = true;
  const toWait: string[] = [];

  // The state changes are sent concurrently; what each did is reported in argument order.
  const moves = await mapLimit(units, REQUEST_CONCURRENCY, async (unit): Promise<string | undefined> => {
    const desired = unit.desiredState ?? 'inactive';
    const plan = planCommand(command, isDesiredState(desired) ? desired : 'inactive');
    if (plan.kind !== 'move') return undefined;
    try {
      await client.setDesiredState(unit.name, target);
      return undefined;
    } catch (err) {
      return describeError(err);
    }
  });
  for (const [i, unit] of units.entries()) {
    const { name } = unit;
    const global = isGlobalUnit(unit.options);
    const desired = unit.desiredState ?? 'inactive';
    const plan = planCommand(command, isDesiredState(desired) ? desired : 'inactive');
    switch (plan.kind) {
      case 'invalid':
        ctx.err(`Unable to ${command} unit ${name} in state ${desired}`);
        ok = false;
        continue;
      case 'noop':
        // Nothing to trigger; a non-global unit is still waited for and reported.
        if (!global && attempts !== NO_BLOCK) toWait.push(name);
        continue;
      case 'move': {
        const failure = moves[i];
        if (failure !== undefined) {
          ctx.err(`Error ${GERUND[command]} units: ${failure}`);
          ok = false;
          continue;
        }
        if (global) ctx.out(`Triggered global unit ${name} ${command}`);
        else if (attempts === NO_BLOCK) ctx.out(`Triggered unit ${name} ${command}`);
        else toWait.push(name);
      }
    }
  }

  const waited: string[] = [];
  const waits = toWait.map((name) => waitForTarget(ctx, name, command, attempts));
  for (const wait of waits) {
    const result = await wait;
    for (const line of result.lines) ctx.out(line);
    if (result.outcome.ok) waited.push(result.name);
    else {
      ctx.err(`Error waiting for units: ${result.outcome.why ?? 'unknown error'}`);
      ok = false;
    }
  }
  return { ok, waited };
}

interface TargetWait {
  readonly name: string;
  readonly lines: readonly string[];
  readonly outcome: WaitResult<unknown>;
}

async function waitForTarget(
  ctx: Context,
  name: string,
  command: StateCommand,
  attempts: number,
): Promise<TargetWait> {
  const target = TARGET[command];
  const reached = await waitForUnitState(ctx, name, target, attempts);
  if (!reached.ok) return { name, lines: [], outcome: reached };
  const lines = [await unitStateLine(ctx, reached.value, target)];
  if (command !== 'start') return { name, lines, outcome: reached };
  return { name, lines, outcome: await waitForActive(ctx, reached.value, attempts) };
}
