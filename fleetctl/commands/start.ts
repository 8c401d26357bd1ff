import type { Command } from 'commander';
import { blockAttempts } from '../blocking.js';
import type { Context } from '../context.js';
import { createAndMove } from '../create-and-move.js';
import { defineCommand, onRun } from '../define.js';
import { addBlockFlags, addReplaceFlag, addSignFlag, flagSet, intValue } from '../flags.js';
import { warnIfSigning } from './submit.js';

/** `fleetctl start UNIT...`: submits and schedules units if needed and starts them (`launched`). */
export function registerStart(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'start',
    summary:
      'Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary.',
    usage: '[--no-block|--block-attempts=N] UNIT...',
    description: [
      'Start one or many units on the cluster. Select units to start by glob matching',
      'for units in the current working directory or matching names of previously',
      'submitted units.',
      '',
      'For units which are not global, start operations are performed synchronously,',
      'which means fleetctl will block until it detects that the unit(s) have',
      'transitioned to a launched state and systemd reports them active. This',
      'behaviour can be configured with the respective --block-attempts and --no-block',
      'options. Start operations on global units are always non-blocking.',
      '',
      'A unit that systemd reports failed, or that stays inactive for a whole attempt',
      '(2 seconds) after it was launched, makes start exit 1. While the cluster cannot',
      'place a unit, fleetctl says why once and keeps waiting as the block attempts allow.',
      '',
      'Start a single unit:',
      '\tfleetctl start foo.service',
      '',
      'Start an entire directory of units with glob matching:',
      '\tfleetctl start myservice/*',
      '',
      'Start a unit from a local template file next to it (web@.service):',
      '\tfleetctl start units/web@1.service',
    ].join('\n'),
  });
  addSignFlag(cmd);
  addBlockFlags(cmd, 'started');
  addReplaceFlag(cmd, 'Replace the already started units in the cluster with new versions.');
  onRun(cmd, ctx, async (args) => {
    warnIfSigning(ctx, cmd);
    const attempts = blockAttempts(!flagSet(cmd, 'block'), intValue(cmd, 'blockAttempts', 0));
    return createAndMove(ctx, args, 'start', { replace: flagSet(cmd, 'replace'), attempts });
  });
}
