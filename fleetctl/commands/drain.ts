import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../lib/errors.js';
import type { ApiDrain } from '../client.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { drainProgressLines, resolveMachine } from '../drain-progress.js';
import { boolFlag, flagSet, intFlag, intValue } from '../flags.js';

/** How often a blocking drain looks at the engine's progress. */
const POLL_MS = 500;

/**
 * `fleetctl drain MACHINE`: marks a machine unschedulable and waits while the engine moves its
 * units off (engine/drain-plan.ts). The engine does the moving, so interrupting fleetctl does not
 * stop the drain; running the command again just watches it (and changes its options).
 */
export function registerDrain(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'drain',
    summary: 'Take a machine out of scheduling and move its units to other machines',
    usage: '[--max-parallel=N] [--force] [--no-block] MACHINE',
    description: [
      'Marks MACHINE (a machine ID or a unique prefix of one) unschedulable: no new',
      'unit is placed there (global units still run everywhere). Then the engine moves',
      'its units to other machines, at most --max-parallel at a time: each unit is',
      'stopped on MACHINE, started elsewhere, and active there before the next one',
      'goes, so a unit never runs on two machines at once. A unit moves together with',
      'the units that follow it (MachineOf).',
      '',
      'Units that cannot move (MachineID names MACHINE, MachineOf a unit that cannot',
      'move, or no other machine can run them) are listed with why and keep running,',
      'unless --force stops them (they start again when the machine is undrained).',
      '',
      'drain blocks until nothing more will move, printing each step, and exits 1',
      'naming the units that did not move (with --force, only those that failed). The',
      'drain is kept in etcd and carried out by the leading engine: it goes on across',
      'fleetd restarts and leader changes, and if fleetctl is interrupted. Run',
      '"fleetctl undrain MACHINE" to make the machine schedulable again; nothing moves',
      "back by itself. list-machines shows each machine's state (ready, draining,",
      'drained). A machine accepts a drain of itself through its own unix socket.',
      '',
      'Drain this machine before maintenance, two units at a time:',
      '\tfleetctl drain --max-parallel=2 $(cat /etc/machine-id)',
    ].join('\n'),
  });
  intFlag(cmd, '--max-parallel <N>', 'Move at most N units at a time (N >= 1).', 1);
  boolFlag(cmd, '--force', 'Stop the units that cannot move instead of leaving them running.');
  boolFlag(cmd, '--no-block', 'Do not wait for the drain to finish; print its state and exit.');
  onRun(cmd, ctx, async (args) => {
    if (args.length !== 1 || args[0] === undefined) {
      ctx.err('One machine ID required');
      return 1;
    }
    const maxParallel = intValue(cmd, 'maxParallel', 1);
    if (maxParallel < 1) {
      ctx.err(`--max-parallel must be at least 1, got ${maxParallel}`);
      return 1;
    }
    const force = flagSet(cmd, 'force');
    const client = ctx.client();
    let drain: ApiDrain;
    let machine: string;
    try {
      const found = resolveMachine(await client.listMachines(), args[0]);
      if ('error' in found) {
        ctx.err(found.error);
        return 1;
      }
      machine = found.id;
      drain = await client.drain(machine, { maxParallel, force });
    } catch (err) {
      ctx.err(`Error draining machine ${args[0]}: ${describeError(err)}`);
      return 1;
    }
    ctx.out(`Draining ${machine} (max-parallel ${maxParallel}${force ? ', force' : ''})`);
    if (!flagSet(cmd, 'block')) {
      ctx.out(`Machine ${machine} is ${drain.state}`);
      return 0;
    }
    let before: ApiDrain | undefined;
    for (;;) {
      for (const line of drainProgressLines(before, drain)) ctx.out(line);
      before = drain;
      if (drain.state === 'drained' || drain.state === 'ready') break;
      await sleep(POLL_MS);
      try {
        drain = await client.getDrain(machine);
      } catch (err) {
        ctx.err(`Error reading the drain of ${machine}: ${describeError(err)}`);
        return 1;
      }
    }
    if (drain.state === 'ready') {
      ctx.err(`Machine ${machine} was undrained before the drain finished`);
      return 1;
    }
    const notMoved = [...drain.stuck, ...drain.failed].map((u) => u.unit).sort();
    ctx.out(
      `Machine ${machine} drained: ${drain.moved.length} moved, ${drain.stuck.length} not movable, ` +
        `${drain.forced.length} stopped, ${drain.failed.length} failed`,
    );
    if (notMoved.length > 0) {
      ctx.err(`Units not moved off ${machine}: ${notMoved.join(', ')}`);
      return 1;
    }
    return 0;
  });
}
