import type { Command } from 'commander';
import { isFleetError } from '../../lib/errors.js';
import { resolveCommand } from '../argv.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';

/** `fleetctl help [COMMAND]`: the program's help, or one command's (unique prefixes work). */
export function registerHelp(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'help',
    summary: 'Help about any command',
    usage: '[COMMAND]',
    description: [
      'Help provides help for any command in the application.',
      'Simply type fleetctl help [path to command] for full details.',
    ].join('\n'),
  });
  onRun(cmd, ctx, (args) => {
    const [topic] = args;
    if (topic === undefined) {
      program.outputHelp();
      return Promise.resolve(0);
    }
    let target: Command | undefined;
    try {
      target = resolveCommand(program, topic);
    } catch (err) {
      if (!isFleetError(err, 'USAGE_INVALID')) throw err;
      ctx.err(`Error: ${err.message}`);
      return Promise.resolve(1);
    }
    if (target === undefined) {
      ctx.err(`Unknown help topic ${JSON.stringify(topic)}. Run 'fleetctl help' for usage.`);
      return Promise.resolve(1);
    }
    target.outputHelp();
    return Promise.resolve(0);
  });
}
