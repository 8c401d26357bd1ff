import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import { blockAttempts, pollUntil, type WaitResult } from '../blocking.js';
import type { ApiUnit } from '../client.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { findUnits } from '../find-units.js';
import { intFlag, intValue } from '../flags.js';
import { isGlobalUnit } from '../unit-data.js';
import { unitStateLine, waitForActive, waitForUnitState } from '../waits.js';

/**
 * `fleetctl restart UNIT...`: a rolling restart, one unit after the other. fleet's version waited
 * for `launched` right after asking for `loaded`, so it hung or restarted nothing; ours does stop,
 * wait for `loaded`, start, wait for `launched` and systemd `active`, each wait bounded by
 * `--block-attempts`. A global unit is stopped, waited for until no machine reports it running,
 * and started again (fleet did nothing for global units).
 */
export function registerRestart(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'restart',
    summary: 'Instruct systemd to rolling restart one or more units in the cluster.',
    usage: '[--block-attempts=N] UNIT...',
    description: [
      'Restart one or more units in the cluster, one after the other: each unit is',
      'stopped, and once it is stopped started again; the next unit follows once this one',
      'is active. A unit that is loaded but not launched is simply started. Units that',
      'are inactive, or not in the cluster, cannot be restarted (exit 1).',
      '',
      'Each wait takes at most --block-attempts attempts of 2 seconds (0: no limit). If a',
      'unit does not stop in time it is asked to start again, so it is never left stopped.',
      '',
      'A global unit is stopped everywhere, waited for until no machine reports it',
      'running, and started again without waiting.',
      '',
      'Restart a single unit:',
      '\tfleetctl restart foo.service',
      '',
      'Restart an entire directory of units with glob matching:',
      '\tfleetctl restart myservice/*',
    ].join('\n'),
  });
  intFlag(
    cmd,
    '--block-attempts <N>',
    'Wait for each step of a restart, performing up to N attempts of 2 seconds before giving up. A value of 0 indicates no limit.',
    0,
  );
  onRun(cmd, ctx, async (args) => {
    if (args.length === 0) {
      ctx.err('No units given');
      return 1;
    }
    const attempts = blockAttempts(false, intValue(cmd, 'blockAttempts', 0));
    const { found, missing } = await findUnits(ctx, args);
    let ok = found.length > 0 && missing.length === 0;
    for (const unit of found) {
      const restarted = isGlobalUnit(unit.options)
        ? await restartGlobal(ctx, unit, attempts)
        : await restartOne(ctx, unit, attempts);
      ok &&= restarted;
    }
    return ok ? 0 : 1;
  });
}

async function setState(ctx: Context, name: string, state: string): Promise<boolean> {
  try {
    await ctx.client().setDesiredState(name, state);
    return true;
  } catch (err) {
    ctx.err(`Error restarting unit ${name}: ${describeError(err)}`);
    return false;
  }
}

async function restartOne(ctx: Context, unit: ApiUnit, attempts: number): Promise<boolean> {
  const { name } = unit;
  const desired = unit.desiredState ?? 'inactive';
  if (desired !== 'loaded' && desired !== 'launched') {
    ctx.err(`Unable to restart unit ${name} in state ${desired}`);
    return false;
  }
  if (desired === 'launched') {
    if (!(await setState(ctx, name, 'loaded'))) return false;
    const stopped = await waitForUnitState(ctx, name, 'loaded', attempts);
    if (!stopped.ok) {
      ctx.err(`Error waiting for units: ${stopped.why ?? 'unknown error'}`);
      // Never leave a unit stopped because the stop took too long: ask for it to run again.
      await setState(ctx, name, 'launched');
      return false;
    }
    ctx.out(await unitStateLine(ctx, stopped.value, 'loaded'));
  }
  if (!(await setState(ctx, name, 'launched'))) return false;
  const started = await waitForUnitState(ctx, name, 'launched', attempts);
  if (!started.ok) {
    ctx.err(`Error waiting for units: ${started.why ?? 'unknown error'}`);
    return false;
  }
  ctx.out(await unitStateLine(ctx, started.value, 'launched'));
  const active = await waitForActive(ctx, started.value, attempts);
  if (!active.ok) {
    ctx.err(`Error waiting for units: ${active.why ?? 'unknown error'}`);
    return false;
  }
  return true;
}

// States in which systemd still runs (or is busy with) a unit.
const RUNNING = new Set(['active', 'activating', 'deactivating', 'reloading', 'refreshing']);

async function restartGlobal(ctx: Context, unit: ApiUnit, attempts: number): Promise<boolean> {
  const { name } = unit;
  const desired = unit.desiredState ?? 'inactive';
  if (desired === 'loaded') {
    if (!(await setState(ctx, name, 'launched'))) return false;
    ctx.out(`Triggered global unit ${name} start`);
    return true;
  }
  if (desired !== 'launched') {
    ctx.err(`Unable to restart unit ${name} in state ${desired}`);
    return false;
  }
  if (!(await setState(ctx, name, 'loaded'))) return false;
  const stopped: WaitResult<true> = await pollUntil<true>(
    async () => {
      const running = (await ctx.client().listUnitStates({ unitName: name })).filter((s) =>
        RUNNING.has(s.systemdActiveState ?? ''),
      );
      if (running.length === 0) return { done: true, value: true };
      return { done: false, why: `still running on ${running.length} machine(s)` };
    },
    attempts,
    ctx.timing,
  );
  const started = await setState(ctx, name, 'launched');
  if (!stopped.ok) {
    ctx.err(
      `Error restarting global unit ${name}: it did not stop everywhere in time (${stopped.why ?? 'unknown error'}); asked it to start again`,
    );
    return false;
  }
  if (started) ctx.out(`Triggered global unit ${name} restart`);
  return started;
}
