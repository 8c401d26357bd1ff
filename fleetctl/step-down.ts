import type { Command } from 'commander';
import { NO_BLOCK, blockAttempts } from './blocking.js';
import type { Context } from './context.js';
import { findUnits } from './find-units.js';
import { flagSet, intValue } from './flags.js';
import { changeUnitStates } from './state-changes.js';

/**
 * `stop` and `unload`: move units that exist in the cluster down the state ladder, wait as the
 * block flags say, and report `Successfully <done> units [a b].` once all waited-for units got
 * there. Exit 1 when no unit is given, a unit is not in the cluster, or a change failed.
 */
export async function stepDown(
  cmd: Command,
  ctx: Context,
  args: readonly string[],
  command: 'stop' | 'unload',
  done: 'stopped' | 'unloaded',
): Promise<number> {
  if (args.length === 0) {
    ctx.err('No units given');
    return 1;
  }
  const attempts = blockAttempts(!flagSet(cmd, 'block'), intValue(cmd, 'blockAttempts', 0));
  const { found, missing } = await findUnits(ctx, [...args]);
  if (found.length === 0) return 1;
  const result = await changeUnitStates(ctx, found, command, attempts);
  if (result.ok && attempts !== NO_BLOCK && result.waited.length > 0) {
    ctx.err(`Successfully ${done} units [${result.waited.join(' ')}].`);
  }
  return result.ok && missing.length === 0 ? 0 : 1;
}
