import type { Command } from 'commander';
import { blockAttempts } from '../blocking.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { addBlockFlags, addReplaceFlag, addSignFlag, flagSet, intValue } from '../flags.js';
import { createAndMove } from '../create-and-move.js';
import { warnIfSigning } from './submit.js';

/** `fleetctl load UNIT...`: submits units if needed and schedules them (desired state `loaded`). */
export function registerLoad(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'load',
    summary: 'Schedule one or more units in the cluster, first submitting them if necessary.',
    usage: '[--no-block|--block-attempts=N] UNIT...',
    description: [
      'Load one or many units in the cluster into systemd, but do not start.',
      '',
      'Select units to load by glob matching for units in the current working directory',
      'or matching the names of previously submitted units.',
      '',
      'For units which are not global, load operations are performed synchronously,',
      'which means fleetctl will block until it detects that the unit(s) have',
      'transitioned to a loaded state. This behaviour can be configured with the',
      'respective --block-attempts and --no-block options. Load operations on global',
      'units are always non-blocking. While the cluster cannot place a unit, fleetctl',
      'says why once and keeps waiting as the block attempts allow.',
      '',
      'A unit that is already launched is not loaded: use "fleetctl stop" to stop it.',
      '',
      'Load a single unit:',
      '\tfleetctl load foo.service',
      '',
      'Load an entire directory of units with glob matching, waiting at most 8 seconds:',
      '\tfleetctl --block-attempts=4 load myservice/*',
    ].join('\n'),
  });
  addSignFlag(cmd);
  addBlockFlags(cmd, 'loaded');
  addReplaceFlag(cmd, 'Replace the old scheduled units in the cluster with new versions.');
  onRun(cmd, ctx, async (args) => {
    warnIfSigning(ctx, cmd);
    const attempts = blockAttempts(!flagSet(cmd, 'block'), intValue(cmd, 'blockAttempts', 0));
    return createAndMove(ctx, args, 'load', { replace: flagSet(cmd, 'replace'), attempts });
  });
}
