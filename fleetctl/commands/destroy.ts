import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import type { Context } from '../context.js';
import { unitNames } from '../create-units.js';
import { defineCommand, onRun } from '../define.js';
import { addBlockFlags } from '../flags.js';

/** `fleetctl destroy UNIT...`: removes units from the cluster (stopping and unloading them). */
export function registerDestroy(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'destroy',
    summary: 'Destroy one or more units in the cluster',
    usage: 'UNIT...',
    description: [
      'Completely remove one or more running or submitted units from the cluster.',
      '',
      'Instructs systemd on the host machine to stop the unit, deferring to systemd',
      'completely for any custom stop directives (i.e. ExecStop option in the unit',
      'file).',
      '',
      'Destroying a unit that is not in the cluster is not an error: it is skipped, and',
      'when no named unit exists "Units not found in registry" is printed (exit 0).',
      'The removal is immediate, so --no-block and --block-attempts change nothing;',
      'they are accepted for compatibility.',
      '',
      'Destroy a single unit:',
      '\tfleetctl destroy foo.service',
      '',
      'Destroy an entire directory of units with glob matching:',
      '\tfleetctl destroy myservice/*',
    ].join('\n'),
  });
  addBlockFlags(cmd, 'destroyed');
  onRun(cmd, ctx, async (args) => {
    if (args.length === 0) {
      ctx.err('No units given');
      return 1;
    }
    const client = ctx.client();
    let exitCode = 0;
    let any = false;
    for (const { name } of unitNames(args)) {
      try {
        if (!(await client.destroyUnit(name))) continue;
      } catch (err) {
        ctx.err(`Error destroying units: ${describeError(err)}`);
        exitCode = 1;
        continue;
      }
      any = true;
      ctx.out(`Destroyed ${name}`);
    }
    if (!any && exitCode === 0) ctx.err('Units not found in registry');
    return exitCode;
  });
}
