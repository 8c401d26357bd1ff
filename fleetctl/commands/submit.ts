import type { Command } from 'commander';
import { UNLIMITED } from '../blocking.js';
import type { Context } from '../context.js';
import { createUnits } from '../create-units.js';
import { defineCommand, onRun } from '../define.js';
import { addReplaceFlag, addSignFlag, flagSet } from '../flags.js';

/** `fleetctl submit UNIT...`: uploads units without scheduling them (desired state `inactive`). */
export function registerSubmit(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'submit',
    summary: 'Upload one or more units to the cluster without starting them',
    usage: '[--replace] UNIT...',
    description: [
      'Upload one or more units to the cluster without starting them. Useful',
      'for validating units before they are started.',
      '',
      'Each UNIT is a unit file on disk, validated locally first (every problem is shown',
      'with its file and line). An instance such as web@1.service with no file of its own',
      'is made from its template web@.service, found in the cluster or next to the argument.',
      '',
      'This operation is idempotent; if a named unit already exists in the cluster, it will',
      'not be resubmitted, unless --replace is given and the local file differs.',
      '',
      'Submit a single unit:',
      '\tfleetctl submit foo.service',
      '',
      'Submit a directory of units with glob matching:',
      '\tfleetctl submit myservice/*',
    ].join('\n'),
  });
  addSignFlag(cmd);
  addReplaceFlag(cmd, 'Replace the old submitted units in the cluster with new versions.');
  onRun(cmd, ctx, async (args) => {
    if (args.length === 0) {
      ctx.err('No units given');
      return 1;
    }
    warnIfSigning(ctx, cmd);
    const created = await createUnits(ctx, args, {
      command: 'submit',
      replace: flagSet(cmd, 'replace'),
      attempts: UNLIMITED,
    });
    return created.ok ? 0 : 1;
  });
}

/** fleet meant `--sign` to be refused; it silently ignored it. We accept it and say so. */
export function warnIfSigning(ctx: Context, cmd: Command): void {
  if (flagSet(cmd, 'sign'))
    ctx.warn('The signed/verified units feature is DEPRECATED and --sign is ignored.');
}
