import type { Command } from 'commander';
import { VERSION } from '../../lib/version.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';

/** `fleetctl version`: `fleetctl version <v>`, as fleet prints it. */
export function registerVersion(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'version',
    summary: 'Print the version and exit',
    usage: '',
    description:
      'Print the version of fleetctl and exit. "fleetctl --version" and "fleetctl -v" do the same.',
  });
  onRun(cmd, ctx, (args) => {
    if (args.length > 0) {
      ctx.err('version takes no arguments');
      return Promise.resolve(1);
    }
    ctx.out(`fleetctl version ${VERSION}`);
    return Promise.resolve(0);
  });
}
