import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import { mangleUnitName } from '../../unit/unit-name.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { boolFlag, flagSet, intFlag, intValue, stringFlag, stringValue } from '../flags.js';
import { runOnMachine } from '../ssh.js';
import { isGlobalUnit } from '../unit-data.js';

/** `fleetctl journal UNIT`: `journalctl` for the unit on its machine, over ssh or locally. */
export function registerJournal(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'journal',
    summary: 'Print the journal of a unit in the cluster to stdout',
    usage: '[--lines=N] [--ssh-port=N] [-f|--follow] [--output=STRING] UNIT',
    description: [
      'Outputs the journal of a unit by running "journalctl --unit UNIT --no-pager -n N"',
      'on the machine the unit runs on (over SSH, or directly when it is this host).',
      'The journal of a global unit cannot be shown this way: use "fleetctl ssh" to the',
      'machine you want and run journalctl there.',
      '',
      'Read the last 10 lines:',
      '\tfleetctl journal foo.service',
      '',
      'Read the last 100 lines:',
      '\tfleetctl journal --lines 100 foo.service',
      '',
      'Follow the journal:',
      '\tfleetctl journal -f foo.service',
    ].join('\n'),
  });
  intFlag(cmd, '--lines <N>', 'Number of recent log lines to return.', 10);
  boolFlag(cmd, '-f, --follow', 'Continuously print new entries as they are appended to the journal.', ['f']);
  intFlag(cmd, '--ssh-port <port>', 'Connect to remote hosts over SSH using this TCP port.', 22);
  boolFlag(cmd, '--sudo', 'Execute journal command with sudo.');
  stringFlag(
    cmd,
    '--output <mode>',
    'Output mode, passed to journalctl --output (short, verbose, json, cat, ...).',
    'short',
  );
  onRun(cmd, ctx, async (args) => {
    const [arg] = args;
    if (arg === undefined || args.length !== 1) {
      ctx.err('One unit file must be provided.');
      return 1;
    }
    const name = mangleUnitName(arg);
    const unit = await ctx.client().getUnit(name);
    if (unit === undefined) {
      ctx.err(`Unit ${name} does not exist.`);
      return 1;
    }
    if (isGlobalUnit(unit.options)) {
      ctx.err(`Unable to retrieve journal of global unit ${name}.`);
      return 1;
    }
    if (unit.currentState === 'inactive' || unit.currentState === undefined || unit.machineID === undefined) {
      ctx.err(`Unit ${name} does not appear to be running.`);
      return 1;
    }
    const command = [
      ...(flagSet(cmd, 'sudo') ? ['sudo'] : []),
      'journalctl',
      '--unit',
      name,
      '--no-pager',
      '-n',
      String(intValue(cmd, 'lines', 10)),
      '--output',
      stringValue(cmd, 'output', 'short'),
      ...(flagSet(cmd, 'follow', ['f']) ? ['-f'] : []),
    ];
    try {
      return await runOnMachine(ctx, {
        machineId: unit.machineID,
        command,
        sshPort: intValue(cmd, 'sshPort', 22),
      });
    } catch (err) {
      ctx.err(describeError(err));
      return 1;
    }
  });
}
