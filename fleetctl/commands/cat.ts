import type { Command } from 'commander';
import { mangleUnitName } from '../../unit/unit-name.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { canonicalText } from '../unit-data.js';

/** `fleetctl cat UNIT`: the canonical form of a submitted unit (not the original file text). */
export function registerCat(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'cat',
    summary: 'Output the contents of a submitted unit',
    usage: 'UNIT',
    description: [
      "Outputs the unit file that is currently loaded in the cluster, in fleet's",
      'canonical form: sections in order of first appearance with their options grouped',
      'under them, one blank line between sections. Comments and spacing of the original',
      'file are not kept. Useful to verify the correct version of a unit is running.',
      '',
      'Example:',
      '\tfleetctl cat foo.service',
    ].join('\n'),
  });
  onRun(cmd, ctx, async (args) => {
    const [arg] = args;
    if (arg === undefined || args.length !== 1) {
      ctx.err('One unit file must be provided');
      return 1;
    }
    const name = mangleUnitName(arg);
    const unit = await ctx.client().getUnit(name);
    if (unit === undefined) {
      ctx.err(`Unit ${name} not found`);
      return 1;
    }
    ctx.write(canonicalText(unit.options));
    return 0;
  });
}
