import type { Command } from 'commander';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { addBlockFlags } from '../flags.js';
import { stepDown } from '../step-down.js';

/** `fleetctl stop UNIT...`: stops launched units, leaving them loaded (desired state `loaded`). */
export function registerStop(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'stop',
    summary: 'Instruct systemd to stop one or more units in the cluster.',
    usage: '[--no-block|--block-attempts=N] UNIT...',
    description: [
      'Stop one or more units from running in the cluster, but allow them to be',
      'started again in the future.',
      '',
      'Instructs systemd on the host machine to stop the unit, deferring to systemd',
      'completely for any custom stop directives (i.e. ExecStop option in the unit',
      'file).',
      '',
      'For units which are not global, stop operations are performed synchronously,',
      'which means fleetctl will block until it detects that the unit(s) have',
      'transitioned to a stopped state. This behaviour can be configured with the',
      'respective --block-attempts and --no-block options. Stop operations on global',
      'units are always non-blocking.',
      '',
      'A unit that is not loaded (desired state inactive) cannot be stopped; units not',
      'in the cluster are reported. Either makes stop exit 1.',
      '',
      'Stop a single unit:',
      '\tfleetctl stop foo.service',
      '',
      'Stop an entire directory of units with glob matching, without waiting:',
      '\tfleetctl --no-block stop myservice/*',
    ].join('\n'),
  });
  addBlockFlags(cmd, 'stopped');
  onRun(cmd, ctx, (args) => stepDown(cmd, ctx, args, 'stop', 'stopped'));
}
