import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import type { Context } from '../context.js';
import { expandUnitArgs, notFoundMessage } from '../find-units.js';
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
      'Destroying a unit that is not in the cluster is not an error: it is skipped and',
      'named ("Unit X not found in registry", with the closest submitted name), exit 0.',
      'A name with glob characters matches the submitted units (quote it for the shell):',
      "\tfleetctl destroy 'web-*'",
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
    const { names, unmatched, submitted } = await expandUnitArgs(ctx, args);
    const missing = [...unmatched];
    for (const name of names) {
      try {
        if (!(await client.destroyUnit(name))) {
          missing.push(name);
          continue;
        }
      } catch (err) {
        ctx.err(`Error destroying units: ${describeError(err)}`);
        exitCode = 1;
        continue;
      }
      ctx.out(`Destroyed ${name}`);
    }
    if (missing.length > 0) {
      const all = await submitted();
      for (const name of missing) ctx.err(notFoundMessage(name, all));
    }
    return exitCode;
  });
}
