import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { resolveMachine } from '../drain-progress.js';

/** `fleetctl undrain MACHINE`: makes a drained machine schedulable again. */
export function registerUndrain(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'undrain',
    summary: 'Make a drained machine schedulable again',
    usage: 'MACHINE',
    description: [
      'Removes the drain mark of MACHINE (a machine ID or a unique prefix of one): new',
      'units may be placed there again. Units that moved away stay where they are;',
      'units stopped by "drain --force" start again, wherever the scheduler puts them.',
      '',
      '\tfleetctl undrain $(cat /etc/machine-id)',
    ].join('\n'),
  });
  onRun(cmd, ctx, async (args) => {
    if (args.length !== 1 || args[0] === undefined) {
      ctx.err('One machine ID required');
      return 1;
    }
    const client = ctx.client();
    try {
      const found = resolveMachine(await client.listMachines(), args[0]);
      // A machine that went away may still be marked: an exact ID is tried as it is.
      const machine = 'id' in found ? found.id : args[0];
      if (await client.undrain(machine)) ctx.out(`Machine ${machine} is schedulable again`);
      else ctx.out(`Machine ${machine} was not draining`);
      return 0;
    } catch (err) {
      ctx.err(`Error undraining machine ${args[0]}: ${describeError(err)}`);
      return 1;
    }
  });
}
