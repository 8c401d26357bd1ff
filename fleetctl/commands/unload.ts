import type { Command } from 'commander';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { addBlockFlags } from '../flags.js';
import { stepDown } from '../step-down.js';

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
  onRun(cmd, ctx, (args) => stepDown(cmd, ctx, args, 'unload', 'unloaded'));
}
