import type { Command } from 'commander';
import { NO_BLOCK, blockAttempts } from '../blocking.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { findUnits } from '../find-units.js';
import { addBlockFlags, flagSet, intValue } from '../flags.js';
import { changeUnitStates } from '../state-changes.js';

/** `fleetctl unload UNIT...`: stops and unschedules units (desired state `inactive`). */
export function registerUnload(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'unload',
    summary: 'Unschedule one or more units in the cluster.',
    usage: '[--no-block|--block-attempts=N] UNIT...',
    description: [
      'Unload one or more units from the machines they are scheduled on: stop them and',
      'remove them from systemd there. The units stay in the cluster (inactive) and can',
      'be loaded or started again.',
      '',
      'For units which are not global, unload operations are performed synchronously,',
      'which means fleetctl will block until it detects that the unit(s) have',
      'transitioned to an inactive state. This behaviour can be configured with the',
      'respective --block-attempts and --no-block options. Unload operations on global',
      'units are always non-blocking.',
      '',
      'Unload a single unit:',
      '\tfleetctl unload foo.service',
    ].join('\n'),
  });
  addBlockFlags(cmd, 'unloaded');
  onRun(cmd, ctx, async (args) => {
    if (args.length === 0) {
      ctx.err('No units given');
      return 1;
    }
    const attempts = blockAttempts(!flagSet(cmd, 'block'), intValue(cmd, 'blockAttempts', 0));
    const { found, missing } = await findUnits(ctx, args);
    if (found.length === 0) return 1;
    const result = await changeUnitStates(ctx, found, 'unload', attempts);
    if (result.ok && attempts !== NO_BLOCK && result.waited.length > 0) {
      ctx.err(`Successfully unloaded units [${result.waited.join(' ')}].`);
    }
    return result.ok && missing.length === 0 ? 0 : 1;
  });
}
